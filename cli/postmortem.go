package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/policy"
	pm "github.com/rewind-sre/rewind/report"
)

func postMortemCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "postmortem ID [--store PATH] [--policy FILE]",
		Short: "The post-mortem draft of a rollback (Markdown)",
		Long: `Render the post-mortem draft of a recorded rollback from the journal: the
seed's template filled with the real timeline, the findings and, with
--policy, the impact estimated from the system's Prometheus.`,
		Example: `  rewind postmortem rb-20260101T003130Z-3f2a91c0 --policy policy.yaml`,
		Args:    cobra.ExactArgs(1),
	}
	store := cmd.Flags().String("store", daemon.DefaultStorePath(), "the rollback journal: a SQLite file, or kubernetes[:NAMESPACE] (docs/storage.md)")
	file := cmd.Flags().String("policy", "", "the policy, for the metrics source (impact estimate) and the thresholds; optional")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return postMortem(cmd.Context(), env, args[0], *store, *file)
	}
	return cmd
}

func postMortem(ctx context.Context, env *Env, id, storePath, file string) error {
	st, err := daemon.OpenStoreAt(ctx, storePath, daemon.StoreOptions{Shared: true})
	if err != nil {
		return err
	}
	defer st.Close()
	rb, err := st.Get(ctx, id)
	if err != nil {
		return err
	}
	var (
		src rewind.Source
		sys *policy.System
	)
	if file != "" {
		pol, err := loadPolicy(env, file)
		if err != nil {
			return err
		}
		if sys = pol.System(rb.System); sys != nil {
			if s, err := daemon.NewPrometheus(sys.Prometheus); err == nil {
				src = s
			}
		}
	}
	md, _, err := pm.DraftPostMortem(ctx, st, src, sys, id)
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(env.Stdout, md)
	return err
}
