package healthcheck

import (
	"context"
	"fmt"
	"strings"

	"github.com/weftmesh/weft/manifests"
)

// Destination checks, through each pod's admin port.
var catDestination = Category{Name: "destination", Order: 90}

// destinationAdminPort serves destination's /ready (docs/development.md).
const destinationAdminPort = 9996

func init() {
	Register(Check{ID: "destination-ready", Category: catDestination, Modes: ControlPlane,
		Description: "destination answers ready on its admin port", Run: destinationReady})
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
			bad = append(bad, fmt.Sprintf("pod %s: %v", p.Name, err))
		}
	}
	if n == 0 {
		return fail("no destination pod is ready", "kubectl -n "+e.ControlPlaneNS+" get pods -l "+manifests.LabelComponent+"=destination")
	}
	if len(bad) > 0 {
		return fail(strings.Join(bad, "\n"), "kubectl -n "+e.ControlPlaneNS+" logs deploy/"+manifests.DestinationName+" -c destination")
	}
	return ok("")
}
