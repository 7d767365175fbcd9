package healthcheck

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/internal/workload"
)

// Data-plane checks (--proxy): every meshed pod of the namespace (or all).
var catData = Category{Name: "data-plane", Order: 100}

func init() {
	Register(
		Check{ID: "proxy-ready", Category: catData, Modes: DataPlane,
			Description: "meshed pods' proxies are ready", WaitFor: "meshed pods to become Ready", Run: proxyReady},
		Check{ID: "proxy-version", Category: catData, Modes: DataPlane,
			Description: "proxies run the control plane's version", Run: proxyVersion},
		Check{ID: "proxy-certs", Category: catData, Modes: DataPlane,
			Description: "proxies hold valid certificates", Run: proxyCerts},
		Check{ID: "proxy-trust-root", Category: catData, Modes: DataPlane,
			Description: "proxies were given the current trust anchors", Run: proxyTrustRoot},
		Check{ID: "proxy-discovery", Category: catData, Modes: DataPlane,
			Description: "proxies report no discovery errors", Run: proxyDiscovery},
		Check{ID: "proxy-uninjected", Category: catData, Modes: DataPlane,
			Description: "pods of injected namespaces are meshed", Run: proxyUninjected},
	)
}

// dataPods lists the live pods of the --proxy scope, outside the control plane.
func dataPods(ctx context.Context, e *Env) ([]*corev1.Pod, error) {
	pods, err := e.Pods(ctx, e.Namespace)
	if err != nil {
		return nil, err
	}
	var out []*corev1.Pod
	for _, p := range live(pods) {
		if p.Namespace != e.ControlPlaneNS {
			out = append(out, p)
		}
	}
	return out, nil
}

func meshedPods(ctx context.Context, e *Env) ([]*corev1.Pod, error) {
	pods, err := dataPods(ctx, e)
	if err != nil {
		return nil, err
	}
	out := pods[:0:0]
	for _, p := range pods {
		if meshed(p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func name(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

// proxyContainerReady reports the proxy container's readiness.
func proxyContainerReady(p *corev1.Pod) bool {
	for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if s.Name == annotations.ProxyContainer {
			return s.Ready
		}
	}
	return false
}

func proxyReady(ctx context.Context, e *Env) Finding {
	pods, err := dataPods(ctx, e)
	if err != nil {
		return errFinding(err, "")
	}
	var waiting []string
	for _, p := range pods {
		if why := stuck(p); why != "" && (meshed(p) || injectedNS(ctx, e, p.Namespace)) {
			return fail(why, "kubectl -n "+p.Namespace+" describe pod "+p.Name)
		}
		if meshed(p) && !proxyContainerReady(p) {
			waiting = append(waiting, "pod "+name(p)+" "+state(p))
		}
	}
	if len(waiting) > 0 {
		sort.Strings(waiting)
		return pending(fmt.Sprintf("%d proxies not ready: %s", len(waiting), strings.Join(first(waiting, 3), ", ")),
			"kubectl describe pod <pod>; kubectl logs <pod> -c "+annotations.ProxyContainer)
	}
	return ok("")
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}

func proxyVersion(ctx context.Context, e *Env) Finding {
	v, err := e.Config(ctx)
	if err != nil {
		return errFinding(err, "")
	}
	pods, err := meshedPods(ctx, e)
	if err != nil {
		return errFinding(err, "")
	}
	var old []string
	for _, p := range pods {
		if got := p.Annotations[annotations.ProxyVersion]; got != v.ProxyVersion {
			old = append(old, fmt.Sprintf("pod %s runs proxy %s", name(p), got))
		}
	}
	if len(old) > 0 {
		sort.Strings(old)
		return warn(list(old)+"\nthe control plane's proxy version is "+v.ProxyVersion, restartHint(pods, old))
	}
	return ok("")
}

// restartHint names the rollout restart of the first listed pod's workload.
func restartHint(pods []*corev1.Pod, listed []string) string {
	for _, p := range pods {
		for _, l := range listed {
			if strings.HasPrefix(l, "pod "+name(p)+" ") {
				kind, wl := workload.Owner(p)
				if kind == "Pod" {
					return "recreate the pods, e.g. `kubectl -n " + p.Namespace + " delete pod " + p.Name + "`, and their owners' other pods"
				}
				return "restart these workloads, e.g. `kubectl -n " + p.Namespace + " rollout restart " + strings.ToLower(kind) + "/" + wl + "`"
			}
		}
	}
	return "restart these workloads: `kubectl rollout restart`"
}

func proxyCerts(ctx context.Context, e *Env) Finding {
	pods, err := meshedPods(ctx, e)
	if err != nil {
		return errFinding(err, "")
	}
	var readyPods []*corev1.Pod
	for _, p := range pods {
		if proxyContainerReady(p) {
			readyPods = append(readyPods, p)
		}
	}
	return certFinding(ctx, e, readyPods, "kubectl rollout restart")
}

func proxyTrustRoot(ctx context.Context, e *Env) Finding {
	v, err := e.Config(ctx)
	if err != nil {
		return errFinding(err, "")
	}
	want := v.TrustRootHash()
	pods, err := meshedPods(ctx, e)
	if err != nil {
		return errFinding(err, "")
	}
	var stale []string
	for _, p := range pods {
		if got, ok := p.Annotations[annotations.TrustRootSHA256]; ok && got != want {
			stale = append(stale, "pod "+name(p)+" was given other trust anchors")
		}
	}
	if len(stale) > 0 {
		return warn(list(stale), "the anchors were rotated: "+restartHint(pods, stale)+" to pick up the current ones")
	}
	return ok("")
}

// discoveryFailingMetric counts a proxy's destination streams that failed
// and have not delivered since (proxy/destclient).
const discoveryFailingMetric = "weft_discovery_streams_failing"

// proxyDiscovery warns about every ready proxy whose destination streams
// are failing now.
func proxyDiscovery(ctx context.Context, e *Env) Finding {
	pods, err := meshedPods(ctx, e)
	if err != nil {
		return errFinding(err, "")
	}
	var readyPods []*corev1.Pod
	for _, p := range pods {
		if proxyContainerReady(p) {
			readyPods = append(readyPods, p)
		}
	}
	bad := forEach(ctx, readyPods, func(ctx context.Context, p *corev1.Pod) string {
		fams, err := podMetrics(ctx, e, p)
		if err != nil {
			return "pod " + name(p) + ": " + err.Error()
		}
		n, found := gauge(fams, discoveryFailingMetric)
		switch {
		case !found:
			return "pod " + name(p) + ": exports no " + discoveryFailingMetric + " (proxy older than this CLI?)"
		case n > 0:
			return fmt.Sprintf("pod %s: %g destination streams failing (%s)", name(p), n, discoveryFailingMetric)
		}
		return ""
	})
	if len(bad) > 0 {
		return warn(list(bad), "check destination (`weft check`) and the proxy's log: `kubectl logs <pod> -c "+annotations.ProxyContainer+"`")
	}
	return ok("")
}

// injectedNS reports whether namespace ns is annotated for injection.
func injectedNS(ctx context.Context, e *Env, ns string) bool {
	nss, err := e.Namespaces(ctx)
	if err != nil {
		return false
	}
	for _, n := range nss {
		if n.Name == ns {
			return n.Annotations[annotations.Inject] == annotations.Enabled
		}
	}
	return false
}

func proxyUninjected(ctx context.Context, e *Env) Finding {
	pods, err := dataPods(ctx, e)
	if err != nil {
		return errFinding(err, "")
	}
	var missing []string
	for _, p := range pods {
		if meshed(p) || p.Spec.HostNetwork || p.Annotations[annotations.Inject] == annotations.Disabled || !injectedNS(ctx, e, p.Namespace) {
			continue
		}
		missing = append(missing, "pod "+name(p)+" runs without a proxy")
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return warn(list(missing)+"\nthey predate the namespace's injection (or the injector was down)", restartHint(pods, missing))
	}
	return ok("")
}
