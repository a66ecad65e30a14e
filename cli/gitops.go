package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rewind-sre/rewind/daemon"
)

func resumeGitOpsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "resume-gitops --policy FILE --system S",
		Short: "Resume the Flux or Argo CD reconciler a rollback suspended",
		Long: `After a rollback, the GitOps owner of the system's canary (the Flux
Kustomization or HelmRelease, the Argo CD Application) stays suspended until
the revert is merged in Git (docs/gitops.md). This restores each owner's
recorded previous setting exactly (spec.suspend, or the Application's
automated sync policy), removes Rewind's record from it, and removes the
rule Rewind added to a generating ApplicationSet. Owners Rewind did not
suspend are left alone, so running it twice changes nothing.

Exit codes: 0 resumed (or nothing to resume), 1 otherwise.`,
		Example: `  rewind resume-gitops --policy policy.yaml --system checkout`,
		Args:    cobra.NoArgs,
	}
	file := cmd.Flags().String("policy", "", "policy file (YAML)")
	system := cmd.Flags().String("system", "", "the system whose reconciler to resume")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return resumeGitOps(cmd.Context(), env, *file, *system)
	}
	return cmd
}

func resumeGitOps(ctx context.Context, env *Env, file, system string) error {
	if system == "" {
		return usagef("--system is required")
	}
	pol, err := loadPolicy(env, file)
	if err != nil {
		return err
	}
	sys := pol.System(system)
	if sys == nil {
		return fmt.Errorf("no system named %q in %s", system, pol.File)
	}
	s := daemon.GitOpsSystem(sys, daemon.NewKube)
	if s == nil {
		fmt.Fprintf(env.Stdout, "%s has no GitOps owner to resume (rollback.gitops: none, or no Kubernetes target)\n", system)
		return nil
	}
	resumed, err := s.Resume(ctx)
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OWNER\tSUSPENDED BY\tRESTORED")
	for _, r := range resumed {
		if r.Restored == "" {
			fmt.Fprintf(tw, "%s\t-\tnot suspended by Rewind: left alone\n", r.Owner)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Owner, r.By, r.Restored)
	}
	if len(resumed) == 0 && err == nil {
		fmt.Fprintf(tw, "(no owner found on %s's targets)\t\t\n", system)
	}
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("resuming the GitOps owners of %s: %w", system, err)
	}
	return nil
}
