//go:build tools

// Package kubebin pins the Kubernetes control-plane binaries that the local
// test cluster runs. It is a separate module so that k8s.io/kubernetes and its
// staging replaces never leak into weft's own go.mod.
package kubebin

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
