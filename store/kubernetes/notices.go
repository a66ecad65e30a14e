package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	rewind "github.com/rewind-sre/rewind"
)

// noticeObject is a Notice as the API server holds it.
type noticeObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       noticeSpec        `json:"spec"`
	Status     noticeStatus      `json:"status"`
}

type noticeSpec struct {
	ID        int64        `json:"id"`
	Notifier  string       `json:"notifier"`
	Key       string       `json:"key"`
	Created   time.Time    `json:"created"`
	NotBefore time.Time    `json:"notBefore,omitzero"`
	Event     rewind.Event `json:"event"`
}

type noticeStatus struct {
	State        rewind.NoticeState `json:"state"`
	NextAttempt  time.Time          `json:"nextAttempt,omitzero"`
	Attempts     int                `json:"attempts,omitempty"`
	LastError    string             `json:"lastError,omitempty"`
	Done         time.Time          `json:"done,omitzero"`
	ClaimedBy    string             `json:"claimedBy,omitempty"`
	ClaimedUntil time.Time          `json:"claimedUntil,omitzero"`
}

func (o *noticeObject) notice() rewind.Notice {
	n := rewind.Notice{
		ID: o.Spec.ID, Notifier: o.Spec.Notifier, Key: o.Spec.Key, Event: o.Spec.Event, Created: o.Spec.Created,
		State: o.Status.State, NextAttempt: o.Status.NextAttempt, Attempts: o.Status.Attempts, LastError: o.Status.LastError,
		Done: o.Status.Done, ClaimedBy: o.Status.ClaimedBy, ClaimedUntil: o.Status.ClaimedUntil,
	}
	if n.NextAttempt.IsZero() {
		n.NextAttempt = o.Spec.NotBefore
	}
	return n
}

func decodeNotice(u *unstructured.Unstructured) (*noticeObject, error) {
	var o noticeObject
	if err := fromObject(u, &o); err != nil {
		return nil, fmt.Errorf("kubernetes store: decoding Notice %s: %w", u.GetName(), err)
	}
	return &o, nil
}

// boundEvent keeps an event within the budget: its decision and rollback
// snapshots bounded as a Rollback's are.
func boundEvent(e rewind.Event, budget int) rewind.Event {
	e.Reason, _ = clip(e.Reason, maxText)
	if e.Decision != nil {
		sp := rollbackSpec{Decision: e.Decision}
		boundSpec(&sp, budget/2)
		e.Decision = sp.Decision
	}
	if e.Rollback != nil {
		rb := *e.Rollback
		rb.Decision = e.Decision
		st := statusOf(&rb, nil, 0)
		boundStatus(&st, budget/4)
		rb.Steps, rb.Error = st.Steps, st.Error
		e.Rollback = &rb
	}
	for i := range e.Findings {
		e.Findings[i].Detail, _ = clip(e.Findings[i].Detail, maxText)
	}
	return e
}

// nextNoticeID is a new notice id: the time in nanoseconds, later than
// every id this handle assigned or saw (the first call reads the largest
// stored one, so that a new leader's notices come after the old one's).
func (s *Store) nextNoticeID(ctx context.Context) (int64, error) {
	s.mu.Lock()
	known, read := s.lastNotice, s.idsRead
	s.mu.Unlock()
	if !read {
		items, err := list(ctx, s.notices, "")
		if err != nil {
			return 0, fmt.Errorf("kubernetes store: reading the outbox: %w", err)
		}
		for i := range items {
			if id, _, _ := unstructured.NestedInt64(items[i].Object, "spec", "id"); id > known {
				known = id
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idsRead = true
	id := max(s.opt.Now().UnixNano(), known+1, s.lastNotice+1)
	s.lastNotice = id
	return id, nil
}

// Enqueue creates one Notice per new key, named by the key: a key stored
// already (by any process) is left out. See rewind.OutboxStore.
func (s *Store) Enqueue(ctx context.Context, ns []rewind.Notice) (int, error) {
	for i := range ns {
		if ns[i].Notifier == "" || ns[i].Key == "" {
			return 0, errors.New("kubernetes store: a notice needs a notifier and a key")
		}
	}
	s.pruneNoticesSometimes(ctx)
	owners := map[string][]metav1.OwnerReference{} // rollback id -> its object, read once per call
	added := 0
	for i := range ns {
		n := &ns[i]
		id, err := s.nextNoticeID(ctx)
		if err != nil {
			return added, err
		}
		state := n.State
		if state == "" {
			state = rewind.NoticePending
		}
		o := noticeObject{
			APIVersion: Group + "/" + Version, Kind: "Notice",
			Metadata: metav1.ObjectMeta{Name: noticeName(n.Key), Namespace: s.ns, Labels: map[string]string{
				LabelNotifier: labelValue(n.Notifier), LabelState: string(state), LabelNoticeID: strconv.FormatInt(id, 10), LabelManagedBy: managedBy,
			}},
			Spec:   noticeSpec{ID: id, Notifier: n.Notifier, Key: n.Key, Created: n.Created, NotBefore: n.NextAttempt, Event: boundEvent(n.Event, s.opt.MaxObjectBytes)},
			Status: noticeStatus{State: state, Attempts: n.Attempts, LastError: n.LastError, Done: n.Done},
		}
		if rid := n.Event.RollbackID; rid != "" {
			o.Metadata.Labels[LabelRollbackID] = labelValue(rid)
			refs, ok := owners[rid]
			if !ok {
				if owner, err := s.find(ctx, rid); err == nil {
					refs = []metav1.OwnerReference{{APIVersion: Group + "/" + Version, Kind: "Rollback", Name: owner.GetName(), UID: owner.GetUID()}}
				}
				owners[rid] = refs
			}
			o.Metadata.OwnerReferences = refs
		}
		u, err := toObject(&o)
		if err != nil {
			return added, fmt.Errorf("kubernetes store: encoding notice %s: %w", n.Key, err)
		}
		_, err = s.notices.Create(ctx, u, metav1.CreateOptions{})
		switch {
		case err == nil:
			n.ID = id
			added++
			s.mu.Lock()
			s.noticeNames[id] = u.GetName()
			s.mu.Unlock()
		case apierrors.IsAlreadyExists(err):
		default:
			return added, fmt.Errorf("kubernetes store: enqueueing notice %s: %w", n.Key, err)
		}
	}
	return added, nil
}

// notices reads the notices matching selector, oldest first.
func (s *Store) noticesWhere(ctx context.Context, selector string) ([]rewind.Notice, error) {
	items, err := list(ctx, s.notices, selector)
	if err != nil {
		return nil, fmt.Errorf("kubernetes store: reading the outbox: %w", err)
	}
	out := make([]rewind.Notice, 0, len(items))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range items {
		o, err := decodeNotice(&items[i])
		if err != nil {
			return nil, err
		}
		s.noticeNames[o.Spec.ID] = items[i].GetName()
		s.lastNotice = max(s.lastNotice, o.Spec.ID)
		out = append(out, o.notice())
	}
	slices.SortFunc(out, func(a, b rewind.Notice) int { return cmpInt(a.ID, b.ID) })
	return out, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Heads returns the oldest pending notice of each notifier, oldest first.
func (s *Store) Heads(ctx context.Context) ([]rewind.Notice, error) {
	pending, err := s.noticesWhere(ctx, LabelState+"="+string(rewind.NoticePending))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []rewind.Notice
	for _, n := range pending {
		if n.State == rewind.NoticePending && !seen[n.Notifier] {
			seen[n.Notifier] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// Notices lists notices matching f, oldest first.
func (s *Store) Notices(ctx context.Context, f rewind.NoticeFilter) ([]rewind.Notice, error) {
	var sel []string
	if f.Notifier != "" {
		sel = append(sel, LabelNotifier+"="+labelValue(f.Notifier))
	}
	if f.State != "" {
		sel = append(sel, LabelState+"="+string(f.State))
	}
	if f.RollbackID != "" {
		sel = append(sel, LabelRollbackID+"="+labelValue(f.RollbackID))
	}
	all, err := s.noticesWhere(ctx, joinSelector(sel))
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, n := range all {
		if (f.Notifier == "" || n.Notifier == f.Notifier) && (f.State == "" || n.State == f.State) &&
			(f.RollbackID == "" || n.Event.RollbackID == f.RollbackID) {
			out = append(out, n)
		}
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func joinSelector(parts []string) string {
	s := ""
	for i, p := range parts {
		if i > 0 {
			s += ","
		}
		s += p
	}
	return s
}

// noticeObj reads notice id's object.
func (s *Store) noticeObj(ctx context.Context, id int64) (*unstructured.Unstructured, error) {
	s.mu.Lock()
	name := s.noticeNames[id]
	s.mu.Unlock()
	if name != "" {
		u, err := s.notices.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return u, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	items, err := list(ctx, s.notices, LabelNoticeID+"="+strconv.FormatInt(id, 10))
	if err != nil {
		return nil, err
	}
	for i := range items {
		if v, _, _ := unstructured.NestedInt64(items[i].Object, "spec", "id"); v == id {
			return &items[i], nil
		}
	}
	return nil, rewind.ErrNoticeNotFound
}

// updateNotice reads notice id, lets change decide and modify it, and
// writes it on the read resourceVersion, again after a conflict.
func (s *Store) updateNotice(ctx context.Context, id int64, change func(o *noticeObject) error) error {
	for try := 0; ; try++ {
		u, err := s.noticeObj(ctx, id)
		if err != nil {
			return err
		}
		o, err := decodeNotice(u)
		if err != nil {
			return err
		}
		if err := change(o); err != nil {
			return err
		}
		o.Metadata.Labels[LabelState] = string(o.Status.State)
		nu, err := toObject(o)
		if err != nil {
			return err
		}
		_, err = s.notices.Update(ctx, nu, metav1.UpdateOptions{})
		switch {
		case err == nil:
			return nil
		case apierrors.IsNotFound(err):
			return rewind.ErrNoticeNotFound
		case isConflict(err) && try < conflictRetries:
			continue // changed since read: decide again on the new version
		default:
			return err
		}
	}
}

// Claim reserves pending notice id for an attempt by owner until until; see
// rewind.OutboxStore.
func (s *Store) Claim(ctx context.Context, id int64, owner string, now, until time.Time) error {
	if owner == "" {
		return errors.New("kubernetes store: a claim needs an owner")
	}
	err := s.updateNotice(ctx, id, func(o *noticeObject) error {
		n := o.notice()
		if n.State != rewind.NoticePending || n.Claimed(owner, now) {
			return rewind.ErrNoticeClaimed
		}
		o.Status.ClaimedBy, o.Status.ClaimedUntil = owner, until
		return nil
	})
	if err != nil {
		return fmt.Errorf("kubernetes store: claiming notice %d: %w", id, err)
	}
	return nil
}

// Record writes the outcome of an attempt at notice id and clears its
// claim; see rewind.OutboxStore.
func (s *Store) Record(ctx context.Context, id int64, out rewind.NoticeOutcome) error {
	err := s.updateNotice(ctx, id, func(o *noticeObject) error {
		if out.Owner != "" && o.Status.ClaimedBy != "" && o.Status.ClaimedBy != out.Owner {
			return rewind.ErrNoticeClaimed
		}
		st := &o.Status
		st.State, st.Attempts, st.LastError = out.State, st.Attempts+1, out.Error
		st.ClaimedBy, st.ClaimedUntil = "", time.Time{}
		if out.State == rewind.NoticePending {
			if !out.NextAttempt.IsZero() {
				st.NextAttempt = out.NextAttempt
			}
		} else {
			st.Done = out.At
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kubernetes store: recording notice %d: %w", id, err)
	}
	return nil
}

// PruneNotices deletes settled notices (delivered, failed, expired) that
// settled more than NoticeRetention ago. Pending notices are never deleted.
func (s *Store) PruneNotices(ctx context.Context) (deleted int, err error) {
	items, err := list(ctx, s.notices, LabelState+" in ("+string(rewind.NoticeDelivered)+","+string(rewind.NoticeFailed)+","+string(rewind.NoticeExpired)+")")
	if err != nil {
		return 0, fmt.Errorf("kubernetes store: reading the outbox: %w", err)
	}
	cutoff := s.opt.Now().Add(-s.opt.NoticeRetention)
	var errs []error
	for i := range items {
		o, err := decodeNotice(&items[i])
		if err != nil || o.Status.State == rewind.NoticePending || o.Status.Done.After(cutoff) {
			continue
		}
		uid := items[i].GetUID()
		err = s.notices.Delete(ctx, items[i].GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		switch {
		case err == nil:
			deleted++
		case !apierrors.IsNotFound(err):
			errs = append(errs, err)
		}
	}
	return deleted, errors.Join(errs...)
}

func (s *Store) pruneNoticesSometimes(ctx context.Context) {
	s.mu.Lock()
	due := s.opt.Now().Sub(s.lastNoticePrune) >= retentionEvery
	if due {
		s.lastNoticePrune = s.opt.Now()
	}
	s.mu.Unlock()
	if due {
		_, _ = s.PruneNotices(ctx)
	}
}
