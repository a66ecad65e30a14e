package main

// The Flux CRDs the tests install (Kustomization, GitRepository and
// HelmRelease in testdata/crds/ of the repository root, which StartKube
// installs) are generated from Flux's own API modules, pinned in this
// go.mod, with controller-gen (also pinned here, as a tool):
//
//	cd tools/flux && GOTOOLCHAIN=go1.27.3 go generate
//
//go:generate sh -c "d=$DOLLAR(mktemp -d) && go tool controller-gen crd paths=github.com/fluxcd/kustomize-controller/api/v1 paths=github.com/fluxcd/source-controller/api/v1 paths=github.com/fluxcd/helm-controller/api/v2 output:crd:artifacts:config=$DOLLAR{d} && cp $DOLLAR{d}/kustomize.toolkit.fluxcd.io_kustomizations.yaml $DOLLAR{d}/source.toolkit.fluxcd.io_gitrepositories.yaml $DOLLAR{d}/helm.toolkit.fluxcd.io_helmreleases.yaml ../../testdata/crds/ && rm -rf $DOLLAR{d}"

import (
	// Imported so that the module pins it for controller-gen.
	_ "github.com/fluxcd/helm-controller/api/v2"
)
