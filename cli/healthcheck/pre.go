package healthcheck

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
	"github.com/weftmesh/weft/manifests"
)

// Checks before install (--pre).
var catPre = Category{Name: "pre-install", Order: 30}

// MaxClockSkew is the clock difference to the API server a run tolerates.
const MaxClockSkew = 30 * time.Second

func init() {
	Register(
		Check{ID: "pre-rbac", Category: catPre, Modes: Pre,
			Description: "can create every kind `weft install` renders", Run: preRBAC},
		Check{ID: "pre-namespace", Category: catPre, Modes: Pre,
			Description: "the control-plane namespace holds no weft yet", Run: preNamespace},
		Check{ID: "pre-crds", Category: catPre, Modes: Pre,
			Description: "weft CRDs are absent or of a compatible version", Run: preCRDs},
		Check{ID: "pre-clock-skew", Category: catPre, Modes: Pre,
			Description: "clock skew to the API server is under 30s", Run: preClockSkew},
		Check{ID: "pre-pod-security", Category: catPre, Modes: Pre,
			Description: "Pod Security admission admits the proxy's init container", Run: prePodSecurity},
	)
}

// installKind is one kind `weft install` renders (kept equal to the
// rendered manifests by TestInstallKindsCoverRender).
type installKind struct {
	Kind, Group, Resource string
	Namespaced            bool
}

var installKinds = []installKind{
	{"Namespace", "", "namespaces", false},
	{"ServiceAccount", "", "serviceaccounts", true},
	{"ConfigMap", "", "configmaps", true},
	{"Secret", "", "secrets", true},
	{"Service", "", "services", true},
	{"Deployment", "apps", "deployments", true},
	{"PodDisruptionBudget", "policy", "poddisruptionbudgets", true},
	{"Role", "rbac.authorization.k8s.io", "roles", true},
	{"RoleBinding", "rbac.authorization.k8s.io", "rolebindings", true},
	{"ClusterRole", "rbac.authorization.k8s.io", "clusterroles", false},
	{"ClusterRoleBinding", "rbac.authorization.k8s.io", "clusterrolebindings", false},
	{"MutatingWebhookConfiguration", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", false},
	{"CustomResourceDefinition", "apiextensions.k8s.io", "customresourcedefinitions", false},
}

func preRBAC(ctx context.Context, e *Env) Finding {
	var denied []string
	for _, k := range installKinds {
		attr := &authorizationv1.ResourceAttributes{Verb: "create", Group: k.Group, Resource: k.Resource}
		where := "cluster-wide"
		if k.Namespaced {
			attr.Namespace, where = e.ControlPlaneNS, "in namespace "+e.ControlPlaneNS
		}
		r, err := e.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attr}}, metav1.CreateOptions{})
		if err != nil {
			return errFinding(fmt.Errorf("review create %s: %w", k.Resource, err), kubeconfigHint)
		}
		if !r.Status.Allowed {
			denied = append(denied, fmt.Sprintf("cannot create %s %s", k.Kind, where))
		}
	}
	if len(denied) > 0 {
		return fail(strings.Join(denied, "\n"),
			"install as a cluster administrator, or bind the user to cluster-admin: `kubectl create clusterrolebinding weft-installer --clusterrole=cluster-admin --user=<you>`")
	}
	return ok("")
}

func preNamespace(ctx context.Context, e *Env) Finding {
	_, err := e.Client.CoreV1().Namespaces().Get(ctx, e.ControlPlaneNS, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ok("")
	}
	if err != nil {
		return errFinding(fmt.Errorf("get namespace %s: %w", e.ControlPlaneNS, err), "")
	}
	_, err = e.Client.CoreV1().ConfigMaps(e.ControlPlaneNS).Get(ctx, manifests.ConfigName, metav1.GetOptions{})
	if err == nil {
		return fail(fmt.Sprintf("namespace %s already holds a weft install (ConfigMap %s)", e.ControlPlaneNS, manifests.ConfigName),
			"check that install with `weft check`, or remove it: `weft uninstall | kubectl delete -f -`")
	}
	if !apierrors.IsNotFound(err) {
		return errFinding(fmt.Errorf("get ConfigMap %s/%s: %w", e.ControlPlaneNS, manifests.ConfigName, err), "")
	}
	return ok("")
}

func preCRDs(ctx context.Context, e *Env) Finding {
	groups, err := e.Client.Discovery().ServerGroups()
	if err != nil {
		return errFinding(fmt.Errorf("discover API groups: %w", err), "")
	}
	for _, g := range groups.Groups {
		if g.Name != sp.Group {
			continue
		}
		var served []string
		for _, v := range g.Versions {
			if v.Version == sp.Version {
				return ok("")
			}
			served = append(served, v.Version)
		}
		sort.Strings(served)
		return fail(fmt.Sprintf("API group %s serves %s, not %s", sp.Group, strings.Join(served, ", "), sp.Version),
			"replace the CRDs with this version's: `weft install --crds | kubectl apply -f -`")
	}
	return ok("")
}

// preClockSkew compares the creation timestamp the API server gives a
// server-side dry-run ConfigMap with this machine's clock.
func preClockSkew(ctx context.Context, e *Env) Finding {
	before := e.Now()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "weft-check-clock-"}}
	got, err := e.Client.CoreV1().ConfigMaps(metav1.NamespaceDefault).Create(ctx, cm, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	after := e.Now()
	if err != nil {
		return warn(fmt.Sprintf("cannot measure the clock skew (dry-run create of a ConfigMap in default: %v)", err),
			"compare `date -u` here with the API server host's")
	}
	server := got.CreationTimestamp.Time
	if server.IsZero() {
		return warn("cannot measure the clock skew: the API server set no creation timestamp", "compare `date -u` here with the API server host's")
	}
	// The server's clock has second resolution: allow one second slack.
	skew := time.Duration(0)
	switch {
	case server.Before(before.Add(-time.Second)):
		skew = before.Sub(server)
	case server.After(after):
		skew = server.Sub(after)
	}
	if skew > MaxClockSkew {
		return fail(fmt.Sprintf("this machine's clock differs from the API server's by %s (server %s, here %s)",
			skew.Round(time.Second), server.UTC().Format(time.RFC3339), before.UTC().Format(time.RFC3339)),
			"synchronise the clocks (NTP: `timedatectl set-ntp true`); certificates are checked against them")
	}
	return ok("")
}

// podSecurityEnforce is the Pod Security admission label.
const podSecurityEnforce = "pod-security.kubernetes.io/enforce"

func prePodSecurity(ctx context.Context, e *Env) Finding {
	nss, err := e.Namespaces(ctx)
	if err != nil {
		return errFinding(err, "")
	}
	var strict []string
	for _, ns := range nss {
		if lvl := ns.Labels[podSecurityEnforce]; lvl == "baseline" || lvl == "restricted" {
			strict = append(strict, fmt.Sprintf("namespace %s enforces %s", ns.Name, lvl))
		}
	}
	if len(strict) > 0 {
		return warn(list(strict)+"\nthese levels reject the proxy's init container (NET_ADMIN, NET_RAW): meshed pods there will not start",
			"for namespaces you mesh: `kubectl label namespace <ns> "+podSecurityEnforce+"=privileged --overwrite`")
	}
	return ok("")
}
