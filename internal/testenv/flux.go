package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Flux is the Flux stand-in running against a Kube: the reconciler of
// tools/flux, which does what kustomize-controller does with Flux's own
// server-side-apply engine (fetch the GitRepository's branch, kustomize
// build, apply with forced ownership every spec.interval, honour
// spec.suspend). .ci/build-flux builds and caches it.
type Flux struct {
	t      testing.TB
	cmd    *exec.Cmd
	output *Buffer
	done   chan struct{}
	once   sync.Once
}

// StartFlux starts the reconciler with k's admin credentials; it is
// stopped by t.Cleanup, and its log is in the test log when the test
// fails. The binary is $REWIND_FLUX_RECONCILER, else
// ${REWIND_CACHE:-$HOME/.cache/rewind}/flux-ssa-<ssa version>/bin/flux-reconciler;
// when it is missing the test is skipped (fails with CI set).
func StartFlux(t testing.TB, k *Kube) *Flux {
	t.Helper()
	bin := fluxBinary(t)
	f := &Flux{t: t, output: &Buffer{}, done: make(chan struct{})}
	f.cmd = exec.Command(bin, "--kubeconfig", k.Kubeconfig())
	f.cmd.Stdout, f.cmd.Stderr = f.output, f.output
	f.cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	killWithParent(f.cmd)
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("flux: starting %s: %v", bin, err)
	}
	go func() {
		_ = f.cmd.Wait()
		close(f.done)
	}()
	t.Cleanup(func() {
		f.Stop()
		if t.Failed() {
			t.Logf("flux-reconciler log:\n%s", tail(f.output.String(), 20000))
		}
	})
	Eventually(t, 30*time.Second, "flux-reconciler started", func() (bool, string) {
		select {
		case <-f.done:
			t.Fatalf("flux-reconciler exited:\n%s", f.output.String())
		default:
		}
		return strings.Contains(f.output.String(), "flux-reconciler started"), f.output.String()
	})
	return f
}

// Log is the reconciler's output so far: one line per reconcile,
// "reconciled NS/NAME revision R: CHANGES".
func (f *Flux) Log() string { return f.output.String() }

// Reconciles counts the reconciles of namespace/name so far.
func (f *Flux) Reconciles(namespace, name string) int {
	return strings.Count(f.output.String(), "reconciled "+namespace+"/"+name+" ")
}

// Stop stops the reconciler (SIGKILL) and waits for it.
func (f *Flux) Stop() {
	f.once.Do(func() {
		if f.cmd.Process != nil {
			_ = f.cmd.Process.Kill()
		}
		<-f.done
	})
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func fluxBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("REWIND_FLUX_RECONCILER"); p != "" {
		return p
	}
	root := kubeRepoRoot(t)
	version := goModVersion(t, filepath.Join(root, "tools", "flux", "go.mod"), "github.com/fluxcd/pkg/ssa")
	path := filepath.Join(cacheDir(t), "flux-ssa-"+version, "bin", "flux-reconciler")
	if info, err := os.Stat(path); err == nil && info.Mode()&0o111 != 0 {
		return path
	}
	reason := "the Flux stand-in is not built: " + path + " missing (run .ci/build-flux, ~5 min cold; REWIND_FLUX_RECONCILER overrides the path)"
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI must not skip this test", reason)
	}
	t.Skip(reason)
	return ""
}

// cacheDir is ${REWIND_CACHE:-$HOME/.cache/rewind}.
func cacheDir(t testing.TB) string {
	if c := os.Getenv("REWIND_CACHE"); c != "" {
		return c
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatalf("no REWIND_CACHE and no home directory: %v", err)
	}
	return filepath.Join(home, ".cache", "rewind")
}

// goModVersion reads the version a go.mod requires of module.
func goModVersion(t testing.TB, gomod, module string) string {
	t.Helper()
	data, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "//")
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "require" {
			f = f[1:]
		}
		if len(f) == 2 && f[0] == module {
			return f[1]
		}
	}
	t.Fatalf("%s requires no %s", gomod, module)
	return ""
}
