package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/policy"
	pm "github.com/rewind-sre/rewind/report"
	"github.com/rewind-sre/rewind/store/sqlite"
)

func runPostMortem(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "postmortem", "ID [--store PATH] [--policy FILE]")
	store := fs.String("store", "rewind.db", "the rollback journal (SQLite)")
	file := fs.String("policy", "", "the policy, for the metrics source (impact estimate) and the thresholds; optional")
	if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
		return errors.New("usage: rewind postmortem ID [--store PATH] [--policy FILE]")
	}
	id := args[0]
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if _, err := os.Stat(*store); err != nil {
		return fmt.Errorf("no rollback journal at %s", *store)
	}
	st, err := sqlite.Open(ctx, *store)
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
	if *file != "" {
		pol, err := loadPolicy(env, *file)
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
