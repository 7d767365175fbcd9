package healthcheck

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/manifests"
)

// Checks of the install: its configuration, CRDs, components and version.
var (
	catConfig = Category{Name: "weft-config", Order: 40}
	catCP     = Category{Name: "control-plane", Order: 50}
	catCPVer  = Category{Name: "control-plane-version", Order: 60}
)

// component is a control-plane Deployment and its pods' component label.
type component struct{ id, name, short string }

var components = []component{
	{"identity", manifests.IdentityName, "identity"},
	{"destination", manifests.DestinationName, "destination"},
	{"injector", manifests.InjectorName, "proxy-injector"},
}

func init() {
	Register(
		Check{ID: "config-valid", Category: catConfig, Modes: ControlPlane | DataPlane, Fatal: true,
			Description: "weft-config exists and is valid", Run: configValid},
		Check{ID: "crds-served", Category: catConfig, Modes: ControlPlane,
			Description: "CRDs are served at the CLI's version", Run: crdsServed},
	)
	for _, c := range components {
		Register(Check{ID: "cp-" + c.id + "-ready", Category: catCP, Modes: ControlPlane,
			Description: c.id + " is available, its pods Ready and meshed",
			WaitFor:     "Deployment " + c.name + " to become available", Run: componentReady(c)})
	}
	Register(
		Check{ID: "cp-proxy-certs", Category: catCP, Modes: ControlPlane,
			Description: "control-plane proxies hold valid certificates", Run: cpProxyCerts},
		Check{ID: "cp-version", Category: catCPVer, Modes: ControlPlane,
			Description: "control plane and CLI versions match", Run: cpVersion},
	)
}

func installHint(e *Env) string {
	return "install weft: `weft install --weft-namespace " + e.ControlPlaneNS + " | kubectl apply -f -`"
}

func configValid(ctx context.Context, e *Env) Finding {
	v, err := e.Config(ctx)
	if err != nil {
		return fail(err.Error(), installHint(e))
	}
	if err := v.Validate(); err != nil {
		return fail(fmt.Sprintf("%s holds invalid values: %v", manifests.ConfigName, err), "re-render it: `weft install | kubectl apply -f -`")
	}
	return ok("")
}

func crdsServed(ctx context.Context, e *Env) Finding {
	gv := sp.Group + "/" + sp.Version
	l, err := e.Client.Discovery().ServerResourcesForGroupVersion(gv)
	if err == nil {
		for _, r := range l.APIResources {
			if r.Name == sp.Resource {
				return ok("")
			}
		}
	}
	msg := fmt.Sprintf("%s.%s is not served at %s", sp.Resource, sp.Group, sp.Version)
	if err != nil {
		msg += ": " + err.Error()
	}
	return fail(msg, "apply the CRDs: `weft install --crds | kubectl apply -f -`")
}

// componentPods lists the control plane's live pods of one component.
func componentPods(ctx context.Context, e *Env, short string) ([]*corev1.Pod, error) {
	pods, err := e.Pods(ctx, e.ControlPlaneNS)
	if err != nil {
		return nil, err
	}
	var out []*corev1.Pod
	for _, p := range live(pods) {
		if p.Labels[manifests.LabelComponent] == short {
			out = append(out, p)
		}
	}
	return out, nil
}

func componentReady(c component) func(context.Context, *Env) Finding {
	return func(ctx context.Context, e *Env) Finding {
		deps, err := e.Deployments(ctx)
		if err != nil {
			return errFinding(err, "")
		}
		i := -1
		for j := range deps {
			if deps[j].Name == c.name {
				i = j
			}
		}
		if i < 0 {
			return fail(fmt.Sprintf("Deployment %s/%s (%s) not found", e.ControlPlaneNS, c.name, c.id), installHint(e))
		}
		d := &deps[i]
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		if want == 0 {
			n := int32(1)
			if v, err := e.Config(ctx); err == nil {
				n = v.Replicas()
			}
			return fail(fmt.Sprintf("Deployment %s/%s (%s) is scaled to 0 replicas", e.ControlPlaneNS, c.name, c.id),
				fmt.Sprintf("kubectl -n %s scale deployment %s --replicas=%d", e.ControlPlaneNS, c.name, n))
		}
		pods, err := componentPods(ctx, e, c.short)
		if err != nil {
			return errFinding(err, "")
		}
		var notReady []string
		for _, p := range pods {
			if why := stuck(p); why != "" {
				return fail(why, fmt.Sprintf("kubectl -n %s describe pod %s", p.Namespace, p.Name))
			}
			if !meshed(p) {
				return fail(fmt.Sprintf("pod %s/%s of %s has no proxy", p.Namespace, p.Name, c.id),
					"re-apply the install: `weft install | kubectl apply -f -`")
			}
			if !ready(p) {
				notReady = append(notReady, fmt.Sprintf("pod %s %s", p.Name, state(p)))
			}
		}
		if d.Status.AvailableReplicas < want || len(notReady) > 0 || len(pods) == 0 {
			seen := fmt.Sprintf("%d/%d replicas of %s available", d.Status.AvailableReplicas, want, c.name)
			if len(notReady) > 0 {
				seen += "; " + strings.Join(notReady, ", ")
			}
			return pending(seen, fmt.Sprintf("kubectl -n %s describe deployment %s; kubectl -n %s get pods -l %s=%s", e.ControlPlaneNS, c.name, e.ControlPlaneNS, manifests.LabelComponent, c.short))
		}
		return ok("")
	}
}

func cpProxyCerts(ctx context.Context, e *Env) Finding {
	pods, err := e.Pods(ctx, e.ControlPlaneNS)
	if err != nil {
		return errFinding(err, "")
	}
	var cp []*corev1.Pod
	for _, p := range live(pods) {
		if meshed(p) && ready(p) {
			cp = append(cp, p)
		}
	}
	return certFinding(ctx, e, cp, "kubectl -n "+e.ControlPlaneNS+" rollout restart deploy")
}

func cpVersion(ctx context.Context, e *Env) Finding {
	v, err := e.Config(ctx)
	if err != nil {
		return errFinding(err, "")
	}
	var diff []string
	if v.ControllerVersion != e.CLIVersion {
		diff = append(diff, fmt.Sprintf("control plane %s, CLI %s", v.ControllerVersion, e.CLIVersion))
	}
	deps, err := e.Deployments(ctx)
	if err != nil {
		return errFinding(err, "")
	}
	for _, d := range deps {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == annotations.ProxyContainer {
				continue
			}
			if tag := imageTag(c.Image); strings.HasPrefix(c.Image, v.ControllerImage+":") && tag != v.ControllerVersion {
				diff = append(diff, fmt.Sprintf("Deployment %s runs %s, weft-config says %s", d.Name, tag, v.ControllerVersion))
			}
		}
	}
	if len(diff) > 0 {
		return warn(strings.Join(diff, "\n"),
			"upgrade the control plane to this CLI: `weft install | kubectl apply -f -`, or use the CLI of the installed version")
	}
	return ok("")
}

func imageTag(image string) string {
	if i := strings.LastIndexByte(image, ':'); i >= 0 && !strings.Contains(image[i:], "/") {
		return image[i+1:]
	}
	return ""
}
