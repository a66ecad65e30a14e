package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/policy"
)

func validateCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate --policy FILE [--static]",
		Short: "Check a policy: every error at once, with file:line and field path",
		Long: `Check a policy as serve checks it before it acts: the file itself (YAML,
fields, PromQL, conditions, URLs, limits), each system's executors for its
mode, and — unless --static — what the policy names on this machine: secret
files present and readable, secret variables set, Prometheus credential and
CA files, kubeconfig files, exec programs. Every error is printed at once as
FILE:LINE: PATH: MESSAGE.

Exit codes: 0 valid, 1 invalid.`,
		Example: `  rewind validate --policy policy.yaml
  rewind validate --policy policy.yaml --static   # in CI, without the secrets`,
		Args: cobra.NoArgs,
	}
	file := cmd.Flags().String("policy", "", "policy file (YAML)")
	static := cmd.Flags().Bool("static", false, "skip the checks of this machine (secret files and variables, credential files, kubeconfig, exec programs): for CI without the secrets")
	cmd.RunE = func(*cobra.Command, []string) error {
		if *file == "" {
			return usagef("--policy is required")
		}
		p, err := policy.Load(*file)
		var perrs policy.Errors
		if err == nil {
			// Everything serve checks before it acts, with the same messages.
			scope := policy.Everything
			if *static {
				scope = policy.Scope{}
			}
			perrs = daemon.Check(p, scope)
		} else if !errors.As(err, &perrs) {
			return err
		}
		if len(perrs) > 0 {
			for _, e := range perrs {
				fmt.Fprintln(env.Stderr, e.Error())
			}
			fmt.Fprintf(env.Stderr, "%s: %d error(s)\n", *file, len(perrs))
			return exitCode(ExitError)
		}
		n := 0
		for _, s := range p.Systems {
			n += len(s.Triggers)
		}
		fmt.Fprintf(env.Stdout, "%s: valid (%d system(s), %d trigger(s), policy %s)\n", *file, len(p.Systems), n, p.Hash)
		return nil
	}
	return cmd
}

func policyCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "The built-in policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("which? rewind policy default")
		},
	}
	def := &cobra.Command{
		Use:   "default [--watch]",
		Short: "Print the built-in policy: the seed's triggers, thresholds and hold times",
		Long: `Print the built-in policy: the seed's triggers, thresholds and hold times.
With --watch, the built-in rollout-watch policy: every rollout of the
Deployment dwcp/dwcp-manager judged against the previous revision and the
service's history (docs/rollout-watch.md).`,
		Args: cobra.NoArgs,
	}
	watch := def.Flags().Bool("watch", false, "the built-in rollout-watch policy")
	def.RunE = func(*cobra.Command, []string) error {
		text := policy.Default()
		if *watch {
			text = policy.DefaultWatch()
		}
		_, err := env.Stdout.Write(text)
		return err
	}
	cmd.AddCommand(def)
	return cmd
}

// loadPolicy loads a policy and prints its errors one per line.
func loadPolicy(env *Env, file string) (*policy.Policy, error) {
	if file == "" {
		return nil, usagef("--policy is required")
	}
	p, err := policy.Load(file)
	if err != nil {
		return nil, reportPolicyErrors(env, err)
	}
	return p, nil
}

// needEnvironment refuses a policy that names, in scope, what this
// machine lacks (the same check and messages as validate's).
func needEnvironment(env *Env, p *policy.Policy, scope policy.Scope) error {
	if errs := p.CheckEnvironment(scope); len(errs) > 0 {
		return reportPolicyErrors(env, errs)
	}
	return nil
}

// warnEnvironment prints, as warnings, what the policy names in scope but
// this machine lacks.
func warnEnvironment(env *Env, p *policy.Policy, scope policy.Scope) {
	for _, e := range p.CheckEnvironment(scope) {
		fmt.Fprintln(env.Stderr, "warning: "+e.Error())
	}
}

// reportPolicyErrors prints a policy's errors one per line (file:line:
// path: message) and returns their count as the command's error; other
// errors are returned as they are.
func reportPolicyErrors(env *Env, err error) error {
	var perrs policy.Errors
	if !errors.As(err, &perrs) {
		return err
	}
	for _, e := range perrs {
		fmt.Fprintln(env.Stderr, e.Error())
	}
	return fmt.Errorf("%d error(s) in the policy", len(perrs))
}
