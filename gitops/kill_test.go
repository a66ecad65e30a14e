package gitops_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/gitops"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// The kill test runs a rollback in a child process (this test binary, in
// TestGitOpsHelperProcess) with Rewind's real executors against the same
// control plane, Git server and GitHub receiver. At one of the new steps,
// before or after its effect, the child says "REACHED" and blocks; the
// parent kills it with SIGKILL and resumes the rollback from the same store.
const (
	killStepEnv  = "REWIND_GITOPS_KILL_STEP"
	killPhaseEnv = "REWIND_GITOPS_KILL_PHASE"
)

// stopAt announces and blocks before or after the wrapped executor's Do.
type stopAt struct {
	inner rewind.Executor
	step  rewind.StepName
	phase string
}

func (s stopAt) Plan(ctx context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	return s.inner.Plan(ctx, rb)
}

func (s stopAt) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	if s.phase == "before-effect" {
		fmt.Printf("REACHED %s\n", s.step)
		<-ctx.Done()
		return rewind.StepResult{}, ctx.Err()
	}
	res, err := s.inner.Do(ctx, rb)
	fmt.Printf("REACHED %s (%v)\n", s.step, err)
	<-ctx.Done()
	return res, ctx.Err()
}

// TestGitOpsHelperProcess is the child of TestKillAtGitOpsSteps; run
// alone it does nothing.
func TestGitOpsHelperProcess(t *testing.T) {
	c, ok := connFromEnv()
	if !ok {
		return
	}
	r := runner(t, c, true)
	step := rewind.StepName(os.Getenv(killStepEnv))
	r.Executors[step] = stopAt{inner: r.Executors[step], step: step, phase: os.Getenv(killPhaseEnv)}
	rb, err := r.Start(context.Background(), system, "error-rate", "test", nil)
	fmt.Fprintf(os.Stderr, "the helper was not killed: %+v, %v\n", rb, err)
	os.Exit(3)
}

// TestKillAtGitOpsSteps kills Rewind before and after the effect of
// suspend-gitops and git-revert: the resumed rollback succeeds with
// exactly one suspension, one revert branch and one pull request.
func TestKillAtGitOpsSteps(t *testing.T) {
	e := startFluxEnv(t)
	owner := gitops.Owner{Kind: gitops.KindKustomization, Namespace: "flux-system", Name: "apps"}
	for _, step := range []rewind.StepName{rewind.StepSuspendGitOps, rewind.StepGitRevert} {
		for _, phase := range []string{"before-effect", "after-effect"} {
			t.Run(string(step)+"/"+phase, func(t *testing.T) {
				gen := e.kustomization(t).GetGeneration()
				id := killAndResume(t, e, step, phase)
				k := e.kustomization(t)
				if k.GetGeneration() != gen+1 || k.GetAnnotations()[gitops.AnnotationSuspendedBy] != id {
					t.Errorf("the Kustomization: generation %d (was %d), suspended by %q; want exactly one suspension by %s",
						k.GetGeneration(), gen, k.GetAnnotations()[gitops.AnnotationSuspendedBy], id)
				}
				branches := 0
				for _, b := range e.git.BranchNames("apps") {
					if strings.Contains(b, id) {
						branches++
					}
				}
				pulls := 0
				for _, p := range e.gh.Pulls() {
					if p.Head == "rewind/"+id {
						pulls++
					}
				}
				if branches != 1 || pulls != 1 {
					t.Errorf("%d branches and %d pull requests of %s, want one each", branches, pulls, id)
				}
				// Back to the bad release, reconciled, for the next case.
				if _, err := gitops.Resume(t.Context(), &gitops.Finder{Dyn: e.cl.dyn}, []gitops.Owner{owner}); err != nil {
					t.Fatal(err)
				}
				waitImage(t, e.cl.cs, imageV2, time.Minute, "the reconciler to re-apply v2 after Resume")
			})
		}
	}
}

func killAndResume(t *testing.T, e *fluxEnv, step rewind.StepName, phase string) string {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c := e.conn
	c.DB = dbPath(t)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGitOpsHelperProcess$")
	cmd.Env = append(os.Environ(), connEnv+"="+c.env(), killStepEnv+"="+string(step), killPhaseEnv+"="+phase)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := ""
	for sc := bufio.NewScanner(stdout); sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "REACHED "+string(step)) {
			reached = sc.Text()
			break
		}
	}
	_ = cmd.Process.Kill() // SIGKILL
	werr := cmd.Wait()
	if reached == "" {
		t.Fatalf("the child ended (%v) without reaching %s:\n%s", werr, step, stderr.String())
	}
	if strings.Contains(reached, "(") && !strings.HasSuffix(reached, "(<nil>)") {
		t.Fatalf("the step failed in the child: %s", reached)
	}

	st, err := sqlite.Open(ctx, c.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	unfinished, err := st.Unfinished(ctx)
	if err != nil || len(unfinished) != 1 || unfinished[0].Step(step).State != rewind.StepRunning {
		t.Fatalf("after the kill: %+v, %v; want one rollback running %s", unfinished, err, step)
	}
	st.Close()
	landed(t, e, step, phase, unfinished[0].ID)
	r := runner(t, c, true)
	resumed, err := r.Resume(ctx)
	if err != nil || len(resumed) != 1 {
		t.Fatalf("Resume: %v, %v", resumed, err)
	}
	rb := resumed[0]
	if rb.State != rewind.RollbackSucceeded || rb.Step(step).Attempts != 2 {
		t.Fatalf("resumed %s: %s %q, %s attempts %d", rb.ID, rb.State, rb.Error, step, rb.Step(step).Attempts)
	}
	waitImage(t, e.cl.cs, imageV1, time.Minute, "the resumed rollback's v1")
	for _, s := range rb.Steps {
		t.Logf("%s: %s (attempts %d) %s", s.Name, s.State, s.Attempts, s.Detail)
	}
	t.Logf("killed at %q", reached)
	return rb.ID
}

// landed checks that the kill landed where it claims: before the step's
// effect, nothing of it is in the cluster or the Git server; after it, all
// of it is.
func landed(t *testing.T, e *fluxEnv, step rewind.StepName, phase, id string) {
	t.Helper()
	k := e.kustomization(t)
	suspendedBy := k.GetAnnotations()[gitops.AnnotationSuspendedBy]
	suspend, _, _ := unstructured.NestedBool(k.Object, "spec", "suspend")
	_, branch := e.git.Branches("apps")["rewind/"+id]
	pulls := 0
	for _, p := range e.gh.Pulls() {
		if p.Head == "rewind/"+id {
			pulls++
		}
	}
	got := fmt.Sprintf("Kustomization suspend %v by %q, revert branch %v, %d pull requests", suspend, suspendedBy, branch, pulls)
	var want string
	switch {
	case step == rewind.StepSuspendGitOps && phase == "before-effect":
		want = fmt.Sprintf("Kustomization suspend false by %q, revert branch false, 0 pull requests", "")
	case step == rewind.StepSuspendGitOps:
		want = fmt.Sprintf("Kustomization suspend true by %q, revert branch false, 0 pull requests", id)
	case phase == "before-effect":
		want = fmt.Sprintf("Kustomization suspend true by %q, revert branch false, 0 pull requests", id)
	default:
		want = fmt.Sprintf("Kustomization suspend true by %q, revert branch true, 1 pull requests", id)
	}
	if got != want {
		t.Fatalf("killed at %s %s: %s; want %s", step, phase, got, want)
	}
	t.Logf("killed at %s %s: %s", step, phase, got)
}
