package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	rewind "github.com/rewind-sre/rewind"
)

// rollbackObject is a Rollback as the API server holds it.
type rollbackObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       rollbackSpec      `json:"spec"`
	Status     *rollbackStatus   `json:"status,omitempty"`
}

// rollbackSpec is what does not change after Create.
type rollbackSpec struct {
	ID        string           `json:"id"`
	System    string           `json:"system"`
	Number    int64            `json:"number"`
	Reason    string           `json:"reason,omitempty"`
	Requester string           `json:"requester,omitempty"`
	Started   time.Time        `json:"started"`
	Decision  *rewind.Decision `json:"decision,omitempty"`
	Truncated string           `json:"truncated,omitempty"`
}

// rollbackStatus is the record's changing part and the journal.
type rollbackStatus struct {
	State         rewind.RollbackState `json:"state"`
	Step          string               `json:"step,omitempty"` // running now, or failed
	Error         string               `json:"error,omitempty"`
	Ended         time.Time            `json:"ended,omitzero"`
	Duration      string               `json:"duration,omitempty"`
	Evidence      string               `json:"evidence,omitempty"`
	Truncated     string               `json:"truncated,omitempty"`
	Steps         []rewind.StepRecord  `json:"steps,omitempty"`
	Journal       []journalEntry       `json:"journal,omitempty"`
	JournalElided int                  `json:"journalElided,omitempty"`
}

// journalEntry is rewind.JournalEntry without the rollback's id.
type journalEntry struct {
	Seq      int64             `json:"seq"`
	At       time.Time         `json:"at"`
	Step     rewind.StepName   `json:"step,omitempty"`
	State    string            `json:"state"`
	Attempt  int               `json:"attempt,omitempty"`
	Detail   string            `json:"detail,omitempty"`
	Error    string            `json:"error,omitempty"`
	Facts    map[string]string `json:"facts,omitempty"`
	Duration time.Duration     `json:"durationNs,omitempty"`
}

// status is the object's status, or the one Create writes when the object
// has none yet (its creator stopped between the two writes).
func (o *rollbackObject) status() rollbackStatus {
	if o.Status != nil && o.Status.State != "" {
		return *o.Status
	}
	st := rollbackStatus{State: rewind.RollbackRunning}
	for _, n := range rewind.PlanSteps {
		st.Steps = append(st.Steps, rewind.StepRecord{Name: n, State: rewind.StepPending})
	}
	st.Journal = []journalEntry{createdEntry(o.Spec)}
	return st
}

func createdEntry(sp rollbackSpec) journalEntry {
	return journalEntry{Seq: 1, At: sp.Started, State: string(rewind.RollbackRunning), Detail: fmt.Sprintf("created by %s: %s", sp.Requester, sp.Reason)}
}

func (st rollbackStatus) lastSeq() int64 {
	if n := len(st.Journal); n > 0 {
		return st.Journal[n-1].Seq
	}
	return 0
}

// record is the rewind.Rollback an object holds.
func (o *rollbackObject) record() *rewind.Rollback {
	st := o.status()
	return &rewind.Rollback{
		ID: o.Spec.ID, System: o.Spec.System, Reason: o.Spec.Reason, Requester: o.Spec.Requester,
		Decision: o.Spec.Decision, State: st.State, Error: st.Error, Steps: st.Steps,
		Started: o.Spec.Started, Ended: st.Ended, Evidence: st.Evidence,
	}
}

// statusOf is the status that records rb with journal.
func statusOf(rb *rewind.Rollback, journal []journalEntry, elided int) rollbackStatus {
	st := rollbackStatus{
		State: rb.State, Error: rb.Error, Ended: rb.Ended, Evidence: rb.Evidence,
		Steps: slices.Clone(rb.Steps), Journal: journal, JournalElided: elided,
	}
	if !rb.Ended.IsZero() {
		st.Duration = rb.Ended.Sub(rb.Started).Round(time.Millisecond).String()
	}
	for _, s := range rb.Steps {
		if s.State == rewind.StepRunning || s.State == rewind.StepFailed {
			st.Step = string(s.Name)
			break
		}
	}
	return st
}

func decodeRollback(u *unstructured.Unstructured) (*rollbackObject, error) {
	var o rollbackObject
	if err := fromObject(u, &o); err != nil {
		return nil, fmt.Errorf("kubernetes store: decoding Rollback %s: %w", u.GetName(), err)
	}
	return &o, nil
}

// Create records rb, running, with a first journal entry; see
// rewind.RollbackStore. It is the next <system>-<n> object, created only
// when none of the system's is running.
func (s *Store) Create(ctx context.Context, rb *rewind.Rollback) error {
	switch {
	case rb.ID == "" || rb.System == "":
		return errors.New("kubernetes store: a rollback needs an id and a system")
	case rewind.ValidRollbackID(rb.ID) != nil:
		return fmt.Errorf("kubernetes store: %w", rewind.ValidRollbackID(rb.ID))
	case rb.State != rewind.RollbackRunning:
		return fmt.Errorf("kubernetes store: creating rollback %s in state %q, want %q", rb.ID, rb.State, rewind.RollbackRunning)
	}
	if _, err := s.find(ctx, rb.ID); err == nil {
		return fmt.Errorf("kubernetes store: a rollback with id %s is already stored", rb.ID)
	} else if !errors.Is(err, rewind.ErrRollbackNotFound) {
		return err
	}
	for range 8 {
		objs, err := s.ofSystem(ctx, rb.System)
		if err != nil {
			return err
		}
		n, running := newest(objs)
		if running != nil {
			return fmt.Errorf("kubernetes store: creating rollback %s: %w", rb.ID,
				&rewind.InProgressError{System: rb.System, Holder: running.Spec.ID, Where: "store"})
		}
		created, err := s.create(ctx, rb, nil, n+1)
		if apierrors.IsAlreadyExists(err) {
			continue // another process created <system>-<n+1> first: look again
		}
		if err != nil {
			return fmt.Errorf("kubernetes store: creating rollback %s: %w", rb.ID, err)
		}
		s.own(rb.ID, created)
		return nil
	}
	return fmt.Errorf("kubernetes store: creating rollback %s: the system's rollbacks kept changing", rb.ID)
}

// newest returns the largest number among a system's objects, and the one
// of them that is running, if any.
func newest(objs []*rollbackObject) (n int64, running *rollbackObject) {
	for _, o := range objs {
		n = max(n, o.Spec.Number)
		if o.status().State == rewind.RollbackRunning {
			running = o
		}
	}
	return n, running
}

// create writes the object <system>-<n>, then its status: the first
// journal entry, or journal when it is given (Import). Without the second
// write the object still reads as running with its first entry.
func (s *Store) create(ctx context.Context, rb *rewind.Rollback, journal []journalEntry, n int64) (*unstructured.Unstructured, error) {
	sp := rollbackSpec{ID: rb.ID, System: rb.System, Number: n, Reason: rb.Reason, Requester: rb.Requester, Started: rb.Started, Decision: rb.Decision}
	boundSpec(&sp, s.opt.MaxObjectBytes/2)
	o := rollbackObject{
		APIVersion: Group + "/" + Version, Kind: "Rollback",
		Metadata: metav1.ObjectMeta{Name: rollbackName(rb.System, n), Namespace: s.ns, Labels: map[string]string{
			LabelSystem: labelValue(rb.System), LabelRollbackID: labelValue(rb.ID), LabelManagedBy: managedBy,
		}},
		Spec: sp,
	}
	u, err := toObject(&o)
	if err != nil {
		return nil, err
	}
	created, err := s.rollbacks.Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	imported := journal != nil
	if !imported {
		journal = []journalEntry{createdEntry(sp)}
	}
	st := statusOf(rb, journal, 0)
	boundStatus(&st, s.opt.MaxObjectBytes/2)
	if err := setStatus(created, &st); err != nil {
		return nil, err
	}
	updated, err := s.rollbacks.UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err == nil {
		return updated, nil
	}
	if imported {
		// Without its status an imported record would read as running
		// and be run again: take it back.
		uid := created.GetUID()
		derr := s.rollbacks.Delete(ctx, created.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		return nil, errors.Join(fmt.Errorf("writing its status: %w", err), derr)
	}
	// The object reads as running with its first entry all the same; the
	// next Save writes the status on the created object's version.
	unstructured.RemoveNestedField(created.Object, "status")
	return created, nil
}

func setStatus(u *unstructured.Unstructured, st *rollbackStatus) error {
	v, err := toObject(&struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Status     *rollbackStatus `json:"status"`
	}{"v1", "Status", st})
	if err != nil {
		return err
	}
	u.Object["status"] = v.Object["status"]
	return nil
}

// Save writes rb's record and appends event to its journal, on the version
// of the object this handle last wrote or handed out; see
// rewind.RollbackStore.
func (s *Store) Save(ctx context.Context, rb *rewind.Rollback, event rewind.JournalEntry) error {
	if event.At.IsZero() {
		event.At = s.opt.Now()
	}
	for try := 0; ; try++ {
		cur, err := s.owned(ctx, rb.ID)
		if err != nil {
			return err
		}
		o, err := decodeRollback(cur)
		if err != nil {
			return err
		}
		old := o.status()
		last := old.lastSeq()
		entry := journalEntry{Seq: last + 1, At: event.At, Step: event.Step, State: event.State, Attempt: event.Attempt,
			Detail: event.Detail, Error: event.Error, Facts: event.Facts, Duration: event.Duration}
		st := statusOf(rb, append(slices.Clone(old.Journal), entry), old.JournalElided)
		boundStatus(&st, s.opt.MaxObjectBytes/2)
		obj := cur.DeepCopy()
		if err := setStatus(obj, &st); err != nil {
			return err
		}
		updated, err := s.rollbacks.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		switch {
		case err == nil:
			if rb.State == rewind.RollbackRunning {
				s.own(rb.ID, updated)
			} else {
				s.disown(rb.ID)
				s.prune(ctx)
			}
			return nil
		case apierrors.IsNotFound(err):
			s.disown(rb.ID)
			return fmt.Errorf("kubernetes store: saving rollback %s: %w", rb.ID, rewind.ErrRollbackNotFound)
		case isConflict(err) && try < conflictRetries:
			fresh, gerr := s.rollbacks.Get(ctx, cur.GetName(), metav1.GetOptions{})
			if gerr != nil {
				return fmt.Errorf("kubernetes store: saving rollback %s: %w", rb.ID, gerr)
			}
			fo, derr := decodeRollback(fresh)
			if derr != nil {
				return derr
			}
			if now := fo.status().lastSeq(); now != last {
				// Keep what this handle held: its next Save is refused too,
				// until Unfinished hands the rollback over again.
				return fmt.Errorf("kubernetes store: saving rollback %s: %w (entry %d, this process last wrote %d)", rb.ID, rewind.ErrJournalMoved, now, last)
			}
			s.own(rb.ID, fresh) // changed, but not its journal (a label, an annotation): go on
		default:
			return fmt.Errorf("kubernetes store: saving rollback %s: %w", rb.ID, err)
		}
	}
}

func (s *Store) own(id string, u *unstructured.Unstructured) {
	s.mu.Lock()
	s.held[id] = u
	s.mu.Unlock()
}

func (s *Store) disown(id string) {
	s.mu.Lock()
	delete(s.held, id)
	s.mu.Unlock()
}

// owned is the object of rollback id as this handle last wrote it, or as
// stored now when this handle never held it.
func (s *Store) owned(ctx context.Context, id string) (*unstructured.Unstructured, error) {
	s.mu.Lock()
	u := s.held[id]
	s.mu.Unlock()
	if u != nil {
		return u, nil
	}
	return s.find(ctx, id)
}

// find reads the object of rollback id.
func (s *Store) find(ctx context.Context, id string) (*unstructured.Unstructured, error) {
	items, err := list(ctx, s.rollbacks, LabelRollbackID+"="+labelValue(id))
	if err != nil {
		return nil, fmt.Errorf("kubernetes store: reading rollback %s: %w", id, err)
	}
	for i := range items {
		if v, _, _ := unstructured.NestedString(items[i].Object, "spec", "id"); v == id {
			return &items[i], nil
		}
	}
	return nil, fmt.Errorf("kubernetes store: %w: %s", rewind.ErrRollbackNotFound, id)
}

// ofSystem reads every kept rollback of system.
func (s *Store) ofSystem(ctx context.Context, system string) ([]*rollbackObject, error) {
	items, err := list(ctx, s.rollbacks, LabelSystem+"="+labelValue(system))
	if err != nil {
		return nil, fmt.Errorf("kubernetes store: listing the rollbacks of %s: %w", system, err)
	}
	var out []*rollbackObject
	for i := range items {
		o, err := decodeRollback(&items[i])
		if err != nil {
			return nil, err
		}
		if o.Spec.System == system {
			out = append(out, o)
		}
	}
	return out, nil
}

// Get returns the stored record of rollback id.
func (s *Store) Get(ctx context.Context, id string) (*rewind.Rollback, error) {
	u, err := s.find(ctx, id)
	if err != nil {
		return nil, err
	}
	o, err := decodeRollback(u)
	if err != nil {
		return nil, err
	}
	return o.record(), nil
}

// Journal returns rollback id's journal in the order it was written (with
// the entries a very long journal left out missing; their seqs show where).
func (s *Store) Journal(ctx context.Context, id string) ([]rewind.JournalEntry, error) {
	u, err := s.find(ctx, id)
	if err != nil {
		return nil, err
	}
	o, err := decodeRollback(u)
	if err != nil {
		return nil, err
	}
	st := o.status()
	out := make([]rewind.JournalEntry, 0, len(st.Journal))
	for _, e := range st.Journal {
		out = append(out, rewind.JournalEntry{RollbackID: id, Seq: e.Seq, At: e.At, Step: e.Step, State: e.State, Attempt: e.Attempt,
			Detail: e.Detail, Error: e.Error, Facts: e.Facts, Duration: e.Duration})
	}
	return out, nil
}

// all reads every kept rollback.
func (s *Store) all(ctx context.Context, selector string) ([]*rollbackObject, []*unstructured.Unstructured, error) {
	items, err := list(ctx, s.rollbacks, selector)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes store: listing rollbacks: %w", err)
	}
	objs := make([]*rollbackObject, 0, len(items))
	us := make([]*unstructured.Unstructured, 0, len(items))
	for i := range items {
		o, err := decodeRollback(&items[i])
		if err != nil {
			return nil, nil, err
		}
		objs, us = append(objs, o), append(us, &items[i])
	}
	return objs, us, nil
}

// List returns rollbacks matching opts, newest first.
func (s *Store) List(ctx context.Context, opts rewind.ListOptions) ([]*rewind.Rollback, error) {
	sel := ""
	if opts.System != "" {
		sel = LabelSystem + "=" + labelValue(opts.System)
	}
	objs, _, err := s.all(ctx, sel)
	if err != nil {
		return nil, err
	}
	var out []*rewind.Rollback
	for _, o := range objs {
		rb := o.record()
		if (opts.System == "" || rb.System == opts.System) && (opts.State == "" || rb.State == opts.State) {
			out = append(out, rb)
		}
	}
	slices.SortFunc(out, func(a, b *rewind.Rollback) int {
		if c := b.Started.Compare(a.Started); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}

// Unfinished returns the running rollbacks, oldest first, and hands them to
// this handle: its later Saves of them go through.
func (s *Store) Unfinished(ctx context.Context) ([]*rewind.Rollback, error) {
	objs, us, err := s.all(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []*rewind.Rollback
	for i, o := range objs {
		if rb := o.record(); rb.State == rewind.RollbackRunning {
			s.own(rb.ID, us[i])
			out = append(out, rb)
		}
	}
	slices.SortFunc(out, func(a, b *rewind.Rollback) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Prune deletes finished rollbacks beyond RetainCount (oldest first) and
// those that ended more than RetainAge ago. Running rollbacks are never
// deleted. Their notices go with them (owner references).
func (s *Store) Prune(ctx context.Context) (deleted int, err error) {
	objs, us, err := s.all(ctx, "")
	if err != nil {
		return 0, err
	}
	type done struct {
		o *rollbackObject
		u *unstructured.Unstructured
	}
	var finished []done
	for i, o := range objs {
		if o.status().State != rewind.RollbackRunning {
			finished = append(finished, done{o, us[i]})
		}
	}
	slices.SortFunc(finished, func(a, b done) int { return b.o.Spec.Started.Compare(a.o.Spec.Started) }) // newest first
	now := s.opt.Now()
	var errs []error
	for i, f := range finished {
		tooMany := s.opt.RetainCount > 0 && i >= s.opt.RetainCount
		tooOld := s.opt.RetainAge > 0 && now.Sub(f.o.status().Ended) > s.opt.RetainAge
		if !tooMany && !tooOld {
			continue
		}
		uid := f.u.GetUID()
		err := s.rollbacks.Delete(ctx, f.u.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		switch {
		case err == nil:
			deleted++
		case !apierrors.IsNotFound(err):
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return deleted, fmt.Errorf("kubernetes store: deleting old rollbacks: %w", errors.Join(errs...))
	}
	return deleted, nil
}

// prune runs Prune after a rollback finished; a failure waits for the next
// one (retention is not the rollback's business).
func (s *Store) prune(ctx context.Context) { _, _ = s.Prune(ctx) }

// Import stores rb with its journal as they are (rewind store migrate): a
// rollback already stored (by id) is left alone and imported is false. A
// running rollback is refused while another of its system runs here.
func (s *Store) Import(ctx context.Context, rb *rewind.Rollback, journal []rewind.JournalEntry) (imported bool, err error) {
	if err := rewind.ValidRollbackID(rb.ID); err != nil || rb.System == "" {
		return false, fmt.Errorf("kubernetes store: importing %q: a rollback needs a valid id and a system", rb.ID)
	}
	if _, err := s.find(ctx, rb.ID); err == nil {
		return false, nil
	} else if !errors.Is(err, rewind.ErrRollbackNotFound) {
		return false, err
	}
	entries := make([]journalEntry, 0, len(journal))
	for _, e := range journal {
		entries = append(entries, journalEntry{Seq: e.Seq, At: e.At, Step: e.Step, State: e.State, Attempt: e.Attempt,
			Detail: e.Detail, Error: e.Error, Facts: e.Facts, Duration: e.Duration})
	}
	if len(entries) == 0 {
		entries = []journalEntry{} // not nil: create writes it as it is
	}
	for range 8 {
		objs, err := s.ofSystem(ctx, rb.System)
		if err != nil {
			return false, err
		}
		n, running := newest(objs)
		if running != nil && rb.State == rewind.RollbackRunning {
			return false, fmt.Errorf("kubernetes store: importing %s: %w", rb.ID,
				&rewind.InProgressError{System: rb.System, Holder: running.Spec.ID, Where: "store"})
		}
		_, err = s.create(ctx, rb, entries, n+1)
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("kubernetes store: importing %s: %w", rb.ID, err)
		}
		return true, nil
	}
	return false, fmt.Errorf("kubernetes store: importing %s: the system's rollbacks kept changing", rb.ID)
}
