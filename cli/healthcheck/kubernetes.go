package healthcheck

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kubernetes API and version checks, run in every mode.
var (
	catAPI     = Category{Name: "kubernetes-api", Order: 10}
	catVersion = Category{Name: "kubernetes-version", Order: 20}
)

// MinKubernetesMinor is the oldest supported Kubernetes 1.x minor;
// NativeSidecarMinor the first with native sidecars.
const (
	MinKubernetesMinor = 26
	NativeSidecarMinor = 29
)

func init() {
	Register(
		Check{ID: "api-reachable", Category: catAPI, Modes: Always, Fatal: true,
			Description: "can reach the Kubernetes API server", Run: apiReachable},
		Check{ID: "api-credentials", Category: catAPI, Modes: Always, Fatal: true,
			Description: "the credentials are accepted", Run: apiCredentials},
		Check{ID: "k8s-version", Category: catVersion, Modes: Always,
			Description: "Kubernetes version is supported, native sidecars available", Run: k8sVersion},
	)
}

const kubeconfigHint = "check --kubeconfig and --context; `kubectl cluster-info` must work"

func apiReachable(ctx context.Context, e *Env) Finding {
	if _, err := e.ServerVersion(); err != nil {
		return fail(fmt.Sprintf("cannot reach the API server: %v", err), kubeconfigHint)
	}
	return ok("")
}

func apiCredentials(ctx context.Context, e *Env) Finding {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "namespaces"},
	}}
	if _, err := e.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{}); err != nil {
		return fail(fmt.Sprintf("the API server refused the credentials: %v", err), kubeconfigHint+"; refresh expired credentials")
	}
	return ok("")
}

func k8sVersion(ctx context.Context, e *Env) Finding {
	v, err := e.ServerVersion()
	if err != nil {
		return errFinding(err, kubeconfigHint)
	}
	major, _ := strconv.Atoi(v.Major)
	minor, err := strconv.Atoi(strings.TrimRight(v.Minor, "+"))
	if err != nil || major != 1 {
		return warn(fmt.Sprintf("cannot parse the server version %q.%q", v.Major, v.Minor), "")
	}
	switch {
	case minor < MinKubernetesMinor:
		return fail(fmt.Sprintf("Kubernetes %s is older than the oldest supported, 1.%d", v.GitVersion, MinKubernetesMinor),
			fmt.Sprintf("upgrade the cluster to Kubernetes 1.%d or later", NativeSidecarMinor))
	case minor < NativeSidecarMinor:
		return warn(fmt.Sprintf("Kubernetes %s has no native sidecars (1.%d+): proxies run in the legacy sidecar mode", v.GitVersion, NativeSidecarMinor),
			fmt.Sprintf("upgrade the cluster to Kubernetes 1.%d or later for native sidecars", NativeSidecarMinor))
	}
	return ok("")
}
