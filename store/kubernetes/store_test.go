package kubernetes_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/store"
	kstore "github.com/rewind-sre/rewind/store/kubernetes"
	"github.com/rewind-sre/rewind/store/sqlite"
	"github.com/rewind-sre/rewind/store/storetest"
)

type env struct {
	k     *testenv.Kube
	admin *clientset.Clientset
}

func (e *env) open(t *testing.T, ns string, opt kstore.Options) *kstore.Store {
	t.Helper()
	s, err := kstore.New(e.k.AdminConfig(), ns, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestKubernetesStore runs against a real API server with deploy/crds.yaml
// installed (StartKube installs testdata/crds), one namespace per case.
func TestKubernetesStore(t *testing.T) {
	k := testenv.StartKube(t)
	admin, err := clientset.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{k: k, admin: admin}
	// The store contract; a second Store on the same namespace stands for
	// a second replica.
	t.Run("Contract", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) (rewind.Store, func() rewind.Store) {
			ns := kubetest.Namespace(t, admin)
			return e.open(t, ns, kstore.Options{}), func() rewind.Store { return e.open(t, ns, kstore.Options{}) }
		})
	})
	t.Run("MigrateFromSQLite", e.testMigrate)
	t.Run("Retention", e.testRetention)
	t.Run("PrinterColumns", e.testPrinterColumns)
}

// testMigrate: everything of a SQLite store — finished and running
// rollbacks with their journals, pending and delivered notices — arrives in
// the Kubernetes store, and a second run changes nothing.
func (e *env) testMigrate(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rewind.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := storetest.T0
	done := storetest.NewRollback("rb-old", "checkout", t0)
	running := storetest.NewRollback("rb-now", "checkout", t0.Add(time.Hour))
	other := storetest.NewRollback("rb-pay", "payments", t0.Add(time.Minute))
	for _, rb := range []*rewind.Rollback{done, other} {
		if err := db.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
		rb.Step(rewind.StepDrain).State = rewind.StepDone
		if err := db.Save(ctx, rb, rewind.JournalEntry{Step: rewind.StepDrain, State: "done", Attempt: 1, Detail: "drained"}); err != nil {
			t.Fatal(err)
		}
		rb.State, rb.Ended, rb.Evidence = rewind.RollbackSucceeded, rb.Started.Add(time.Minute), "/var/lib/rewind/evidence/"+rb.ID
		if err := db.Save(ctx, rb, rewind.JournalEntry{State: string(rb.State), Duration: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Create(ctx, running); err != nil {
		t.Fatal(err)
	}
	ns := []rewind.Notice{
		storetest.Notice("chat", rewind.EventRollbackCompleted, "rb-old", t0),
		storetest.Notice("chat", rewind.EventRollbackDecided, "rb-now", t0.Add(time.Hour)),
	}
	if _, err := db.Enqueue(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if err := db.Record(ctx, ns[0].ID, rewind.NoticeOutcome{At: t0.Add(time.Second), State: rewind.NoticeDelivered}); err != nil {
		t.Fatal(err)
	}

	ks := e.open(t, kubetest.Namespace(t, e.admin), kstore.Options{})
	rep, err := store.Migrate(ctx, db, ks)
	if err != nil {
		t.Fatal(err)
	}
	if rep != (store.Report{Rollbacks: 3, Notices: 2}) {
		t.Errorf("first migration: %v", rep)
	}
	for _, id := range []string{"rb-old", "rb-now", "rb-pay"} {
		want, _ := db.Get(ctx, id)
		got, err := ks.Get(ctx, id)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s in Kubernetes: %v\n got %+v\nwant %+v", id, err, got, want)
		}
		wj, _ := db.Journal(ctx, id)
		gj, err := ks.Journal(ctx, id)
		if err != nil || !reflect.DeepEqual(gj, wj) {
			t.Errorf("journal of %s: %v\n got %+v\nwant %+v", id, err, gj, wj)
		}
	}
	// The running one is resumed by the next leader, and blocks a second
	// rollback of its system.
	if u, err := ks.Unfinished(ctx); err != nil || len(u) != 1 || u[0].ID != "rb-now" {
		t.Errorf("Unfinished after the migration: %v", err)
	}
	if err := ks.Create(ctx, storetest.NewRollback("rb-new", "checkout", t0.Add(2*time.Hour))); !strings.Contains(errString(err), "rb-now") {
		t.Errorf("Create while the migrated rollback runs: %v", err)
	}
	heads, err := ks.Heads(ctx)
	if err != nil || len(heads) != 1 || heads[0].Event.RollbackID != "rb-now" {
		t.Errorf("pending notices after the migration: %+v, %v", heads, err)
	}
	if d, _ := ks.Notices(ctx, rewind.NoticeFilter{State: rewind.NoticeDelivered}); len(d) != 1 || d[0].Attempts != 1 {
		t.Errorf("delivered notices after the migration: %+v", d)
	}
	rep, err = store.Migrate(ctx, db, ks)
	if err != nil || rep != (store.Report{RollbacksKept: 3, NoticesKept: 2}) {
		t.Errorf("second migration: %v, %v", rep, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// testRetention: finished rollbacks beyond the count, or older than the
// age, are deleted when a rollback finishes; running ones never.
func (e *env) testRetention(t *testing.T) {
	ctx := t.Context()
	now := storetest.T0.Add(100 * 24 * time.Hour)
	s := e.open(t, kubetest.Namespace(t, e.admin), kstore.Options{RetainCount: 3, RetainAge: 30 * 24 * time.Hour, Now: func() time.Time { return now }})
	finish := func(rb *rewind.Rollback, ended time.Time) {
		t.Helper()
		rb.State, rb.Ended = rewind.RollbackSucceeded, ended
		if err := s.Save(ctx, rb, rewind.JournalEntry{State: string(rb.State)}); err != nil {
			t.Fatal(err)
		}
	}
	// An old one, still running: kept whatever its age.
	stuck := storetest.NewRollback("rb-stuck", "search", storetest.T0)
	if err := s.Create(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	// Two that ended long ago, four recent.
	for i, id := range []string{"rb-a", "rb-b", "rb-c", "rb-d", "rb-e", "rb-f"} {
		started := now.Add(-time.Duration(6-i) * time.Hour)
		if i < 2 {
			started = storetest.T0.Add(time.Duration(i) * time.Hour)
		}
		rb := storetest.NewRollback(id, "checkout", started)
		if err := s.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
		finish(rb, started.Add(time.Minute))
	}
	all, err := s.List(ctx, rewind.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rb := range all {
		got = append(got, rb.ID)
	}
	if want := []string{"rb-f", "rb-e", "rb-d", "rb-stuck"}; !reflect.DeepEqual(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
}

// testPrinterColumns: what `kubectl get rollbacks` shows (the Table the
// API server renders from the CRD's printer columns).
func (e *env) testPrinterColumns(t *testing.T) {
	ctx := t.Context()
	ns := kubetest.Namespace(t, e.admin)
	s := e.open(t, ns, kstore.Options{})
	rb := storetest.NewRollback("rb-table", "checkout", time.Now().Add(-time.Minute).Truncate(time.Second))
	if err := s.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	rb.State, rb.Ended = rewind.RollbackSucceeded, rb.Started.Add(7*time.Second)
	if err := s.Save(ctx, rb, rewind.JournalEntry{State: string(rb.State)}); err != nil {
		t.Fatal(err)
	}
	raw, err := e.admin.RESTClient().Get().AbsPath("/apis/rewind.dev/v1alpha1/namespaces/"+ns+"/rollbacks").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").Do(ctx).Raw()
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range table.ColumnDefinitions {
		if c.Priority == 0 {
			cols = append(cols, c.Name)
		}
	}
	if want := []string{"Name", "System", "State", "Reason", "Started", "Duration", "Age"}; !reflect.DeepEqual(cols, want) {
		t.Errorf("columns %v, want %v", cols, want)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("%d rows", len(table.Rows))
	}
	cells := table.Rows[0].Cells
	t.Logf("kubectl get rollbacks: %v", cells)
	if cells[0] != "checkout-1" || cells[1] != "checkout" || cells[2] != "succeeded" || cells[3] != "error-rate" || cells[5] != "7s" {
		t.Errorf("row %v", cells)
	}
}
