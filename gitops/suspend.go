package gitops

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	rewind "github.com/rewind-sre/rewind"
)

// Annotations Rewind writes on an owner it suspends, in the same update as
// the suspension: who suspended it, and the exact previous value of the
// field it changed, so that a re-run after a crash changes nothing and
// Resume restores exactly what was there.
const (
	AnnotationSuspendedBy = "rewind.dev/gitops-suspended-by"
	AnnotationPrevious    = "rewind.dev/gitops-previous"
	// AnnotationIgnoreRule is on an ApplicationSet: the
	// ignoreApplicationDifferences rule Rewind added (JSON), so that Resume
	// removes exactly that rule.
	AnnotationIgnoreRule = "rewind.dev/gitops-ignore-rule"
)

// Facts of the suspend-gitops step.
const (
	FactOwners    = "owners"    // JSON []Suspension
	FactSuspended = "suspended" // the owners, human-readable
)

// conflictBackoff bounds the re-read-and-update loops; the step's ctx
// bounds them too.
var conflictBackoff = wait.Backoff{Steps: 30, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.5, Cap: 500 * time.Millisecond}

// Suspension is what suspending one owner changed.
type Suspension struct {
	Owner Owner `json:"owner"`
	// Field is the field changed: spec.suspend (Flux) or
	// spec.syncPolicy.automated (Argo CD, removed).
	Field string `json:"field"`
	// Previous is the field's value before, as JSON; null when it was absent.
	Previous json.RawMessage `json:"previous"`
	// By is the rollback that suspended the owner; another rollback's id
	// when that one's suspension is still in place (its record is kept).
	By string `json:"by"`
	// IgnoreRule: an ignoreApplicationDifferences rule was added to the
	// owner's ApplicationSet, without which its controller would put the
	// template's sync policy back.
	IgnoreRule bool `json:"ignoreRule,omitempty"`
}

// Suspend is the suspend-gitops executor: it suspends the GitOps owners of
// the rollback's targets (found by their markers, or named by the policy)
// before any other step changes the cluster. A failure fails the step —
// which stops the plan — unless Proceed is set: then the step escalates
// and the plan goes on, with the warning in its detail.
type Suspend struct {
	Finder *Finder
	Refs   []Ref   // the targets whose owners are suspended
	Owners []Owner // the policy's explicit owners; nil: detected from Refs
	// Proceed is the policy's onSuspendFailure: proceed.
	Proceed bool
	// ResumeHint tells people how to resume, e.g.
	// "rewind resume-gitops --system checkout".
	ResumeHint string
}

var _ rewind.Executor = (*Suspend)(nil)

// change is what suspending one owner does to it now.
type change struct {
	owner   Owner
	obj     *unstructured.Unstructured // as read
	field   string
	before  json.RawMessage
	skip    string // non-empty: nothing to change, and why
	otherBy string // another rollback's suspension is in place
}

// owners returns the policy's owners or the detected ones.
func (s *Suspend) owners(ctx context.Context) ([]Owner, error) {
	if s.Owners != nil {
		return s.Owners, nil
	}
	return s.Finder.Owners(ctx, s.Refs...)
}

// Plan lists the update of every owner that is not suspended yet. So that
// a dry run names the owner in every case, an owner suspended already is
// listed with the action "keep", and no owner at all as one "none" entry
// naming the targets looked at: neither is a write.
func (s *Suspend) Plan(ctx context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	owners, err := s.owners(ctx)
	if err != nil {
		return nil, err
	}
	if len(owners) == 0 {
		return []rewind.Change{{Target: s.refNames(), Action: "none", Detail: noOwner + s.refNames() + ": nothing to suspend"}}, nil
	}
	var out []rewind.Change
	for _, o := range owners {
		c, err := s.resolve(ctx, o, rb.ID)
		if err != nil {
			return out, err
		}
		if c.skip != "" {
			out = append(out, rewind.Change{Target: o.String(), Action: "keep", Detail: c.skip + " (owner found by " + o.Found + ")"})
			continue
		}
		if o.ApplicationSet != "" {
			out = append(out, rewind.Change{Target: "Argo CD ApplicationSet " + o.Namespace + "/" + o.ApplicationSet, Action: "update",
				Detail: fmt.Sprintf("spec.ignoreApplicationDifferences += {name: %s, jsonPointers: [/spec/syncPolicy]} (else its controller puts the template's sync policy back)", o.Name)})
		}
		out = append(out, rewind.Change{Target: o.String(), Action: "update", Detail: c.describe()})
	}
	return out, nil
}

func (c *change) describe() string {
	after := "true"
	if c.field != fieldSuspend {
		after = "removed (no automated sync, no self-heal)"
	}
	return fmt.Sprintf("%s: %s → %s; previous value kept in annotation %s (owner found by %s)",
		c.field, string(c.before), after, AnnotationPrevious, c.owner.Found)
}

// Do suspends every owner, each with an update of the object as read.
func (s *Suspend) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	res, err := s.do(ctx, rb)
	if apierrors.IsForbidden(err) {
		err = fmt.Errorf("%w (grant Rewind the role of deploy/gitops/rbac.yaml in the owner's namespace, or set rollback.gitops: none)", err)
	}
	if err == nil || !s.Proceed || ctx.Err() != nil {
		return res, err
	}
	res.Escalate = true
	res.Detail = fmt.Sprintf("could not suspend the GitOps reconciler (%v); the policy says proceed: the reconciler may undo this rollback", err)
	return res, nil
}

func (s *Suspend) do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	owners, err := s.owners(ctx)
	if err != nil {
		return rewind.StepResult{}, fmt.Errorf("finding the GitOps owner: %w", err)
	}
	if len(owners) == 0 {
		return rewind.StepResult{Skipped: true, Detail: noOwner + s.refNames()}, nil
	}
	var (
		done     []Suspension
		names    []string
		anyWrite bool
	)
	for _, o := range owners {
		sp, wrote, err := s.suspendOne(ctx, o, rb.ID)
		if err != nil {
			return rewind.StepResult{Facts: facts(done)}, fmt.Errorf("suspending %s: %w", o, err)
		}
		anyWrite = anyWrite || wrote
		done = append(done, sp)
		names = append(names, o.String())
	}
	hint := ""
	if s.ResumeHint != "" {
		hint = " (" + s.ResumeHint + ")"
	}
	detail := fmt.Sprintf("suspended %s: it stays suspended until the revert is merged in Git and it is resumed%s", strings.Join(names, ", "), hint)
	return rewind.StepResult{Skipped: !anyWrite && allBy(done, rb.ID), Detail: detail, Facts: facts(done)}, nil
}

// noOwner starts what the step says of targets without a GitOps owner.
const noOwner = "no GitOps owner: no Flux or Argo CD marker on "

func (s *Suspend) refNames() string {
	names := make([]string, len(s.Refs))
	for i, r := range s.Refs {
		names[i] = r.String()
	}
	return strings.Join(names, ", ")
}

func allBy(ss []Suspension, id string) bool {
	for _, s := range ss {
		if s.By != id {
			return false
		}
	}
	return true
}

func facts(ss []Suspension) map[string]string {
	if len(ss) == 0 {
		return nil
	}
	b, _ := json.Marshal(ss)
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.Owner.String()
	}
	return map[string]string{FactOwners: string(b), FactSuspended: strings.Join(names, ", ")}
}

// suspendOne suspends o (its ApplicationSet first, when it has one), and
// reports whether it wrote anything.
func (s *Suspend) suspendOne(ctx context.Context, o Owner, id string) (Suspension, bool, error) {
	var wrote bool
	sp := Suspension{Owner: o, By: id}
	if o.ApplicationSet != "" {
		w, err := s.addIgnoreRule(ctx, o, id)
		if err != nil {
			return sp, false, err
		}
		wrote, sp.IgnoreRule = w, true
	}
	r, err := s.Finder.res(o.Kind.GVR())
	if err != nil {
		return sp, wrote, err
	}
	res := r.Namespace(o.Namespace)
	err = retry.OnError(conflictBackoff, retriable, func() error {
		c, err := s.resolve(ctx, o, id)
		if err != nil {
			return err
		}
		sp.Field, sp.Previous = c.field, c.before
		if c.otherBy != "" {
			sp.By = c.otherBy
		}
		if c.skip != "" {
			return nil
		}
		obj := c.obj.DeepCopy()
		if err := apply(obj, c.field); err != nil {
			return err
		}
		ann := obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		prev, _ := json.Marshal(Suspension{Owner: o, Field: c.field, Previous: c.before, By: id, IgnoreRule: sp.IgnoreRule})
		ann[AnnotationSuspendedBy], ann[AnnotationPrevious] = id, string(prev)
		obj.SetAnnotations(ann)
		if _, err := res.Update(ctx, obj, metav1.UpdateOptions{FieldManager: "rewind"}); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	return sp, wrote, err
}

// resolve reads o and decides what suspending it changes now.
func (s *Suspend) resolve(ctx context.Context, o Owner, id string) (*change, error) {
	obj, err := s.Finder.getObj(ctx, o.Kind.GVR(), o.Namespace, o.Name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", o, err)
	}
	c := &change{owner: o, obj: obj, field: fieldOf(o.Kind)}
	if by := obj.GetAnnotations()[AnnotationSuspendedBy]; by != "" {
		// Suspended by Rewind already: by this rollback (a re-run), or by an
		// earlier one never resumed, whose record of the original is kept.
		var rec Suspension
		if err := json.Unmarshal([]byte(obj.GetAnnotations()[AnnotationPrevious]), &rec); err != nil {
			return nil, fmt.Errorf("%s: annotation %s is not Rewind's record: %w", o, AnnotationPrevious, err)
		}
		c.before, c.skip = rec.Previous, "already suspended by rollback "+by
		if by != id {
			c.otherBy = by
		}
		return c, nil
	}
	c.before, err = current(obj, c.field)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	return c, nil
}

const (
	fieldSuspend   = "spec.suspend"
	fieldAutomated = "spec.syncPolicy.automated"
)

func fieldOf(k Kind) string {
	if k == KindApplication {
		return fieldAutomated
	}
	return fieldSuspend
}

// current returns the field's value as JSON, null when absent.
func current(obj *unstructured.Unstructured, field string) (json.RawMessage, error) {
	v, found, err := unstructured.NestedFieldNoCopy(obj.Object, strings.Split(field, ".")...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", field, err)
	}
	if !found {
		return json.RawMessage("null"), nil
	}
	return json.Marshal(v)
}

// apply makes the suspending change to obj.
func apply(obj *unstructured.Unstructured, field string) error {
	path := strings.Split(field, ".")
	if field == fieldSuspend {
		return unstructured.SetNestedField(obj.Object, true, path...)
	}
	unstructured.RemoveNestedField(obj.Object, path...)
	return nil
}

// restore puts the field's previous value back (removes it when it was absent).
func restore(obj *unstructured.Unstructured, field string, prev json.RawMessage) error {
	path := strings.Split(field, ".")
	var v any
	if err := json.Unmarshal(prev, &v); err != nil {
		return fmt.Errorf("previous value of %s: %w", field, err)
	}
	if v == nil {
		unstructured.RemoveNestedField(obj.Object, path...)
		return nil
	}
	return unstructured.SetNestedField(obj.Object, v, path...)
}

// retriable: a conflict means another writer changed the object between
// our read and update; read again and redo the change.
func retriable(err error) bool { return apierrors.IsConflict(err) }
