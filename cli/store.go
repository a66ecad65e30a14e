package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/store"
)

func storeCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Manage the store (migrate)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(storeMigrateCmd(env))
	return cmd
}

func storeMigrateCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate --from PATH --to kubernetes[:NAMESPACE]",
		Short: "Copy every rollback, journal and notice from a SQLite store into the Kubernetes store",
		Long: `Copy the whole state of a SQLite store — every rollback with its journal,
every notice with its state — into the Kubernetes store (Rollback and Notice
objects), so that an upgrade to replicas sharing the API server loses
nothing. Pending notices are delivered by the next leader; settled ones keep
deduplicating. What the target already has is left alone: running it again
changes nothing. Run it while no rewind serve writes the SQLite file.`,
		Example: `  rewind store migrate --from /var/lib/rewind/rewind.db --to kubernetes:rewind`,
		Args:    cobra.NoArgs,
	}
	from := cmd.Flags().String("from", daemon.DefaultStorePath(), "the SQLite store")
	to := cmd.Flags().String("to", "kubernetes", "the Kubernetes store: kubernetes[:NAMESPACE] (default namespace $POD_NAMESPACE)")
	kubeconfig := cmd.Flags().String("kubeconfig", "", "kubeconfig (default: in-cluster, else $KUBECONFIG or ~/.kube/config)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		if daemon.StoreIsFile(*to) {
			return usagef("--to %s: want kubernetes[:NAMESPACE]", *to)
		}
		src, err := daemon.OpenStoreAt(ctx, *from, daemon.StoreOptions{})
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := daemon.OpenStoreAt(ctx, *to, daemon.StoreOptions{Kubeconfig: *kubeconfig})
		if err != nil {
			return err
		}
		imp, ok := dst.(store.Importer)
		if !ok {
			return fmt.Errorf("%s cannot import rollbacks", *to)
		}
		rep, err := store.Migrate(ctx, src, imp)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(env.Stdout, "migrated %s to %s: %s\n", *from, *to, rep)
		return err
	}
	return cmd
}
