package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/deploy"
	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
	"github.com/rewind-sre/rewind/internal/testenv"
	kstore "github.com/rewind-sre/rewind/store/kubernetes"
	"github.com/rewind-sre/rewind/store/storetest"
)

// storeGrants are the verbs of store-rbac.yaml's Role: the store uses
// exactly these (StoreFlow passes under the Role, EveryVerbIsNeeded fails
// without any one of them).
var storeGrants = []string{
	"rewind.dev/rollbacks:create", "rewind.dev/rollbacks:get", "rewind.dev/rollbacks:list", "rewind.dev/rollbacks:delete",
	"rewind.dev/rollbacks/status:update",
	"rewind.dev/notices:create", "rewind.dev/notices:get", "rewind.dev/notices:list", "rewind.dev/notices:update", "rewind.dev/notices:delete",
}

func loadStoreRole(t testing.TB) (*rbacv1.Role, *rbacv1.RoleBinding) {
	t.Helper()
	var (
		role    *rbacv1.Role
		binding *rbacv1.RoleBinding
	)
	for _, obj := range decodeTyped(t, "store-rbac.yaml", deploy.StoreRBAC) {
		switch o := obj.(type) {
		case *rbacv1.Role:
			role = o
		case *rbacv1.RoleBinding:
			binding = o
		default:
			t.Fatalf("store-rbac.yaml: unexpected %T", obj)
		}
	}
	if role == nil || binding == nil || binding.RoleRef.Name != role.Name || binding.Subjects[0].Name != "rewind" {
		t.Fatalf("store-rbac.yaml needs a Role and a RoleBinding of it to the ServiceAccount rewind")
	}
	return role, binding
}

// TestStoreRBAC runs the Kubernetes store as the ServiceAccount under
// store-rbac.yaml's Role on a real API server with RBAC on.
func TestStoreRBAC(t *testing.T) {
	role, _ := loadStoreRole(t)
	t.Run("RulesAreTheStoresVerbs", func(t *testing.T) {
		var rules []rbacv1.PolicyRule
		for _, r := range role.Rules {
			if len(r.ResourceNames) > 0 {
				t.Errorf("rule %+v: resourceNames are not expected", r)
			}
			rules = append(rules, r)
		}
		if got, want := ruleGrants(rules), slices.Sorted(slices.Values(storeGrants)); !reflect.DeepEqual(got, want) {
			t.Errorf("store-rbac.yaml grants %v\nthe store uses %v", got, want)
		}
	})
	k := testenv.StartKube(t)
	admin, err := clientset.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("StoreFlow", func(t *testing.T) {
		ns := kubetest.Namespace(t, admin)
		cfg := bindStoreRole(t, k, admin, role, ns, "rewind")
		if err := exerciseStore(t.Context(), cfg, ns); err != nil {
			t.Fatalf("the store under store-rbac.yaml's Role: %v", err)
		}
	})
	t.Run("EveryVerbIsNeeded", func(t *testing.T) {
		for _, g := range storeGrants {
			t.Run(g, func(t *testing.T) {
				ns := kubetest.Namespace(t, admin)
				cfg := bindStoreRole(t, k, admin, withoutRole(role, g), ns, "rewind")
				err := exerciseStore(t.Context(), cfg, ns)
				if err == nil {
					t.Fatalf("the store works without %s: the Role grants a verb the store does not use", g)
				}
				t.Logf("without %s: %v", g, err)
			})
		}
	})
}

// withoutRole returns role less one group/resource:verb grant.
func withoutRole(role *rbacv1.Role, grant string) *rbacv1.Role {
	out := role.DeepCopy()
	out.Rules = nil
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				var verbs []string
				for _, v := range r.Verbs {
					if g+"/"+res+":"+v != grant {
						verbs = append(verbs, v)
					}
				}
				if len(verbs) > 0 {
					out.Rules = append(out.Rules, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: []string{res}, Verbs: verbs})
				}
			}
		}
	}
	return out
}

// bindStoreRole creates role in ns, binds it to the ServiceAccount ns/sa
// and returns a config acting as that ServiceAccount, once the authorizer
// has seen the binding.
func bindStoreRole(t *testing.T, k *testenv.Kube, admin clientset.Interface, role *rbacv1.Role, ns, sa string) *rest.Config {
	t.Helper()
	ctx := t.Context()
	r := role.DeepCopy()
	r.Namespace, r.ResourceVersion = ns, ""
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, r, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + ns + ":" + sa
	b := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: r.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Wait until the authorizer allows the Role's first remaining grant.
	rule := r.Rules[0]
	res, sub, _ := strings.Cut(rule.Resources[0], "/")
	probe := authorizationv1.ResourceAttributes{Namespace: ns, Group: rule.APIGroups[0], Resource: res, Subresource: sub, Verb: rule.Verbs[0]}
	testenv.Eventually(t, 30*time.Second, "RBAC allows "+user+" "+fmt.Sprint(probe), func() (bool, string) {
		sar, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}, ResourceAttributes: &probe,
		}}, metav1.CreateOptions{})
		if err != nil {
			return false, err.Error()
		}
		return sar.Status.Allowed, sar.Status.Reason
	})
	return k.ConfigFor(user)
}

// exerciseStore uses every operation of the store once, as two replicas
// would: the first error, or what did not happen, is returned.
func exerciseStore(ctx context.Context, cfg *rest.Config, ns string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	opt := kstore.Options{RetainCount: 1, NoticeRetention: time.Minute}
	a, err := kstore.New(cfg, ns, opt)
	if err != nil {
		return err
	}
	b, err := kstore.New(cfg, ns, opt)
	if err != nil {
		return err
	}
	if err := a.Check(ctx); err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	rb := storetest.NewRollback("rb-1", "checkout", now.Add(-time.Hour))
	if err := a.Create(ctx, rb); err != nil {
		return err
	}
	if err := a.Save(ctx, rb, rewind.JournalEntry{Step: rewind.StepDrain, State: string(rewind.StepRunning), Attempt: 1}); err != nil {
		return err
	}
	// Replica b takes the rollback over; a's next write is refused (after a
	// re-read of the object).
	if _, err := b.Unfinished(ctx); err != nil {
		return err
	}
	theirs, err := b.Get(ctx, "rb-1")
	if err != nil {
		return err
	}
	if err := b.Save(ctx, theirs, rewind.JournalEntry{State: string(rewind.RollbackRunning), Detail: "resumed"}); err != nil {
		return err
	}
	if err := a.Save(ctx, rb, rewind.JournalEntry{Step: rewind.StepDrain, State: string(rewind.StepDone)}); !errors.Is(err, rewind.ErrJournalMoved) {
		return fmt.Errorf("the deposed replica's Save: %v, want ErrJournalMoved", err)
	}
	theirs.State, theirs.Ended = rewind.RollbackSucceeded, now.Add(-50*time.Minute)
	if err := b.Save(ctx, theirs, rewind.JournalEntry{State: string(theirs.State)}); err != nil {
		return err
	}
	// A second rollback finishes: retention (1) deletes the first.
	rb2 := storetest.NewRollback("rb-2", "checkout", now.Add(-time.Minute))
	if err := b.Create(ctx, rb2); err != nil {
		return err
	}
	rb2.State, rb2.Ended = rewind.RollbackSucceeded, now
	if err := b.Save(ctx, rb2, rewind.JournalEntry{State: string(rb2.State)}); err != nil {
		return err
	}
	if all, err := b.List(ctx, rewind.ListOptions{}); err != nil || len(all) != 1 {
		return fmt.Errorf("after retention: %d rollbacks (%v), want 1", len(all), err)
	}
	// The outbox: enqueue, heads, claim, record, retention.
	ns1 := []rewind.Notice{storetest.Notice("chat", rewind.EventRollbackCompleted, "rb-2", now.Add(-time.Hour))}
	if _, err := a.Enqueue(ctx, ns1); err != nil {
		return err
	}
	heads, err := b.Heads(ctx)
	if err != nil || len(heads) != 1 {
		return fmt.Errorf("heads: %v, %v", heads, err)
	}
	if err := b.Claim(ctx, heads[0].ID, "b", now, now.Add(time.Minute)); err != nil {
		return err
	}
	if err := b.Record(ctx, heads[0].ID, rewind.NoticeOutcome{At: now.Add(-time.Hour), State: rewind.NoticeDelivered, Owner: "b"}); err != nil {
		return err
	}
	if n, err := b.PruneNotices(ctx); err != nil || n != 1 {
		return fmt.Errorf("notice retention deleted %d (%v), want 1", n, err)
	}
	return nil
}
