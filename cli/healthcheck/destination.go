package healthcheck

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/destination"
	"github.com/weftmesh/weft/internal/ctlserver"
	"github.com/weftmesh/weft/manifests"
)

// Destination checks, through each pod's admin port.
var catDestination = Category{Name: "destination", Order: 90}

func init() {
	Register(
		Check{ID: "destination-ready", Category: catDestination, Modes: ControlPlane,
			Description: "destination answers ready on its admin port", Run: destinationReady},
		Check{ID: "destination-get", Category: catDestination, Modes: ControlPlane,
			Description: "destination answers a real Get for a known Service", Run: destinationSelfTest(destination.SelfTestGet)},
		Check{ID: "destination-get-profile", Category: catDestination, Modes: ControlPlane,
			Description: "destination answers a real GetProfile", Run: destinationSelfTest(destination.SelfTestGetProfile)},
	)
}

// destinationReady asks every ready destination pod's /ready (200 once its
// Kubernetes watchers have synced) through the API server's pod proxy.
func destinationReady(ctx context.Context, e *Env) Finding {
	pods, err := componentPods(ctx, e, "destination")
	if err != nil {
		return errFinding(err, "")
	}
	n := 0
	var bad []string
	for _, p := range pods {
		if !ready(p) {
			continue
		}
		n++
		if _, err := e.AdminGet(ctx, p, destinationAdminPort, "/ready"); err != nil {
			bad = append(bad, "pod "+p.Name+": "+err.Error())
		}
	}
	if n == 0 {
		return fail("no destination pod is ready", podsHint(e, "destination"))
	}
	if len(bad) > 0 {
		return fail(list(bad), logsHint(e, manifests.DestinationName, "destination"))
	}
	return ok("")
}

// destinationSelfTest reads each ready destination pod's self-test: the
// service resolving kubernetes.default through its own gRPC listener, as
// a proxy does.
func destinationSelfTest(test string) func(context.Context, *Env) Finding {
	return func(ctx context.Context, e *Env) Finding {
		problems, err := eachSelfTest(ctx, e, "destination", destinationAdminPort, test, func(_ *corev1.Pod, r ctlserver.Result) string {
			if !r.OK {
				return r.Error
			}
			return ""
		})
		if err != nil {
			return fail(err.Error(), podsHint(e, "destination"))
		}
		if len(problems) > 0 {
			return fail(list(problems), logsHint(e, manifests.DestinationName, "destination"))
		}
		return ok("")
	}
}
