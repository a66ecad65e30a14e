package cli

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rewind-sre/rewind/cluster"
	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/evidence/s3"
	"github.com/rewind-sre/rewind/server"
	kstore "github.com/rewind-sre/rewind/store/kubernetes"
)

func serveCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve --policy FILE [--listen ADDR] [--store PATH] [--token-file FILE] [--leader-elect ...]",
		Short: "The controller daemon: continuous analysis, rollbacks, API, /metrics",
		Long: `The daemon: every system of the policy evaluated at its interval, rollbacks
through the plan, notices, the web UI (/), the HTTP API (/api/v1), the
Alertmanager webhook, /metrics, /healthz and /readyz. It starts and stays up without its
dependencies (cluster, Prometheus, notifiers): /readyz names what is missing,
and a rollback that needs it fails loudly. The policy is reloaded on SIGHUP
and when the file changes; an invalid one is refused and the old one keeps
running. On SIGTERM or SIGINT it starts nothing new, interrupts the rollback
steps under way (they stay in the journal: the next process resumes them)
and exits within --shutdown-timeout.

The store defaults to ` + "`$XDG_STATE_HOME/rewind/rewind.db`" + ` (~/.local/state/rewind/) outside a
cluster and /var/lib/rewind/rewind.db in a pod; $REWIND_STATE_DIR overrides
the directory. One process per SQLite store: the lock is on the file itself.
With replicas (--leader-elect), --store kubernetes keeps rollbacks, their
journal and the outbox in the API server, where the next leader finds them,
and --evidence-bucket keeps evidence bundles in an S3-compatible bucket
(docs/storage.md).`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	file := fs.String("policy", "", "policy file (YAML); reloaded on SIGHUP and when it changes")
	listen := fs.String("listen", ":8080", "HTTP address of the web UI (/), the API, /metrics, /healthz and /readyz")
	store := fs.String("store", daemon.DefaultStorePath(), "the rollback journal: a SQLite file, or kubernetes[:NAMESPACE] (Rollback and Notice objects every replica shares; docs/storage.md)")
	storeKubeconfig := fs.String("store-kubeconfig", "", "kubeconfig of a kubernetes store (default: in-cluster)")
	retainCount := fs.Int("store-retain-count", kstore.DefaultRetainCount, "kubernetes store: finished rollbacks kept, newest first (negative: all)")
	retainAge := fs.Duration("store-retain-age", 0, "kubernetes store: delete finished rollbacks that ended longer ago (0: no age limit)")
	noticeRetention := fs.Duration("store-notice-retention", kstore.DefaultNoticeRetention, "kubernetes store: delete settled notices after this long")
	var s3cfg s3.Config
	bucket := fs.String("evidence-bucket", "", "keep evidence bundles in s3://BUCKET[/PREFIX] (an S3-compatible store) after writing them locally")
	fs.StringVar(&s3cfg.Endpoint, "evidence-endpoint", "s3.amazonaws.com", "host[:port] of the bucket's S3 API")
	fs.StringVar(&s3cfg.Region, "evidence-region", "", "the bucket's region")
	fs.BoolVar(&s3cfg.Insecure, "evidence-insecure", false, "plain HTTP to the S3 endpoint (a MinIO in the cluster without TLS)")
	fs.StringVar(&s3cfg.CAFile, "evidence-ca-file", "", "PEM file of extra CAs for the S3 endpoint")
	fs.StringVar(&s3cfg.AccessKeyFile, "evidence-access-key-file", "", "file holding the S3 access key (default: $AWS_ACCESS_KEY_ID, else the pod's IAM identity)")
	fs.StringVar(&s3cfg.SecretKeyFile, "evidence-secret-key-file", "", "file holding the S3 secret key")
	tokenFile := fs.String("token-file", "", "file holding the bearer token that mutating API calls need (or env REWIND_API_TOKEN)")
	openReads := fs.Bool("open-reads", false, "serve read-only API calls and the web UI's pages without a token")
	uiHeader := fs.String("ui-identity-header", "", "header in which an authenticating proxy (e.g. oauth2-proxy) names the web UI's user, e.g. X-Forwarded-Email; set it only when every request comes through that proxy")
	evidence := fs.String("evidence", "", "evidence bundle directory (default: the policy's, else evidence/ beside the store)")
	elect := fs.Bool("leader-elect", false, "with replicas: act only while holding a Kubernetes Lease")
	leaseNS := fs.String("lease-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the Lease (default $POD_NAMESPACE)")
	leaseName := fs.String("lease-name", "rewind-leader", "name of the Lease")
	leaseKubeconfig := fs.String("lease-kubeconfig", "", "kubeconfig for the Lease (default: in-cluster)")
	identity := fs.String("identity", defaultIdentity(), "this replica's name in the Lease (default $POD_NAME, else host-pid)")
	leaseDuration := fs.Duration("lease-duration", cluster.DefaultLeaseDuration, "how long a Lease holds without renewal")
	renewDeadline := fs.Duration("renew-deadline", cluster.DefaultRenewDeadline, "a leader that cannot renew for this long stops acting")
	retryPeriod := fs.Duration("retry-period", cluster.DefaultRetryPeriod, "how often to try for the Lease")
	shutdown := fs.Duration("shutdown-timeout", daemon.DefaultShutdownTimeout, "on SIGTERM, exit within this long; rollback steps under way stay in the journal for the next process")
	gitopsEvery := fs.Duration("gitops-every", daemon.DefaultGitOpsEvery, "how often each system's Flux or Argo CD owner is looked at (its status in the API and UI; rollback.gitops.autoResume)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		if *elect && *leaseNS == "" {
			return usagef("--leader-elect needs --lease-namespace (or $POD_NAMESPACE)")
		}
		log := daemon.NewLogger(env.Stderr, slog.LevelInfo)
		pol, err := loadPolicy(env, *file)
		if err != nil {
			return err
		}
		token, err := readToken(*tokenFile)
		if err != nil {
			return err
		}
		if len(token) == 0 {
			log.Warn("no API token (--token-file or REWIND_API_TOKEN): mutating API calls are refused")
		}
		// One process per SQLite store: the lock is on the database file
		// itself. A kubernetes store is shared by the replicas.
		st, err := daemon.OpenStoreAt(ctx, *store, daemon.StoreOptions{Kubeconfig: *storeKubeconfig,
			Kubernetes: kstore.Options{RetainCount: *retainCount, RetainAge: *retainAge, NoticeRetention: *noticeRetention}})
		if err != nil {
			return fmt.Errorf("not starting: %w", err)
		}
		defer st.Close()
		if !*elect && !daemon.StoreIsFile(*store) {
			log.Warn("a shared store without --leader-elect: every process started like this acts; run exactly one, or elect a leader", "store", *store)
		}
		opt := daemon.Options{Policy: pol, Store: st, EvidenceDir: *evidence,
			EvidenceFallback: besideStore(*store), Version: Version, Log: log,
			Token: token, OpenReads: *openReads, ShutdownTimeout: *shutdown, GitOpsEvery: *gitopsEvery,
			UI: &daemon.UIOptions{IdentityHeader: *uiHeader}}
		if *bucket != "" {
			if s3cfg.Bucket, s3cfg.Prefix, err = s3.ParseURL(*bucket); err != nil {
				return usagef("--evidence-bucket: %v", err)
			}
			ev, err := s3.New(s3cfg)
			if err != nil {
				return fmt.Errorf("not starting: %w", err)
			}
			opt.Evidence = ev
		}
		if *elect {
			opt.Election = &daemon.Election{Namespace: *leaseNS, Name: *leaseName, Identity: *identity, Kubeconfig: *leaseKubeconfig,
				LeaseDuration: *leaseDuration, RenewDeadline: *renewDeadline, RetryPeriod: *retryPeriod}
		}
		d, err := daemon.New(opt)
		if err != nil {
			return reportPolicyErrors(env, err)
		}
		ln, err := server.Listen(*listen, server.DefaultLimits)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "rewind serve: listening on http://%s (web UI at /; policy %s, %d systems, store %s)\n", ln.Addr(), pol.Hash, len(pol.Systems), *store)
		return d.Serve(ctx, ln, *file)
	}
	return cmd
}

// besideStore is the default evidence directory: evidence/ beside a SQLite
// store; the state directory's beside a kubernetes one.
func besideStore(store string) string {
	if !daemon.StoreIsFile(store) {
		return daemon.DefaultEvidenceDir()
	}
	return filepath.Join(filepath.Dir(store), "evidence")
}

func defaultIdentity() string {
	if p := os.Getenv("POD_NAME"); p != "" {
		return p
	}
	h, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

// readToken reads the API token from a file, or REWIND_API_TOKEN.
func readToken(file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		return bytes.TrimSpace(b), nil
	}
	return []byte(os.Getenv("REWIND_API_TOKEN")), nil
}
