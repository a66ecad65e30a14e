package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/policy"
)

func runValidate(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "validate", "--policy FILE [--static]")
	file := fs.String("policy", "", "policy file (YAML)")
	static := fs.Bool("static", false, "skip the checks of this machine (secret files and variables, credential files, kubeconfig, exec programs): for CI without the secrets")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("--policy is required")
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

func runPolicy(_ context.Context, env *Env, args []string) error {
	if len(args) != 1 || args[0] != "default" {
		return errors.New("usage: rewind policy default")
	}
	_, err := env.Stdout.Write(policy.Default())
	return err
}

// loadPolicy loads a policy and prints its errors one per line.
func loadPolicy(env *Env, file string) (*policy.Policy, error) {
	if file == "" {
		return nil, errors.New("--policy is required")
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
