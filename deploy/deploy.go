// Package deploy holds Rewind's Kubernetes manifests, embedded so that the
// binary can print them and the tests can apply them.
package deploy

import _ "embed"

// RBAC is rbac.yaml: the ServiceAccount, the ClusterRole with exactly the
// verbs the rollback executors use, and an example RoleBinding.
//
//go:embed rbac.yaml
var RBAC []byte

// CRDs is crds.yaml: the Rollback and Notice custom resources of the
// Kubernetes store (store/kubernetes).
//
//go:embed crds.yaml
var CRDs []byte

// StoreRBAC is store-rbac.yaml: the Role with exactly the verbs the
// Kubernetes store uses, and its RoleBinding.
//
//go:embed store-rbac.yaml
var StoreRBAC []byte

// RBACGitOps is gitops/rbac.yaml: the ClusterRole with exactly the verbs of
// the GitOps steps (suspend-gitops, git-revert, resume), and an example
// RoleBinding in Flux's namespace.
//
//go:embed gitops/rbac.yaml
var RBACGitOps []byte
