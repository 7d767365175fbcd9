package healthcheck

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/internal/ctlserver"
	"github.com/weftmesh/weft/manifests"
)

// Admin ports of the control-plane components (manifests/names.go).
const (
	identityAdminPort    = 9990
	injectorAdminPort    = 9995
	destinationAdminPort = 9996
)

// selfTest fetches a control-plane pod's /selftest report through the pod
// proxy: the component exercising itself the way its clients do.
func selfTest(ctx context.Context, e *Env, p *corev1.Pod, port int) (ctlserver.Report, error) {
	var rep ctlserver.Report
	b, err := e.AdminGet(ctx, p, port, "/selftest")
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, fmt.Errorf("pod %s: /selftest answered no report: %w", p.Name, err)
	}
	return rep, nil
}

// eachSelfTest reads the named self-test result of every ready pod of a
// component, calling f for each; f returns a problem or "". It fails when
// no pod is ready or a pod cannot be asked.
func eachSelfTest(ctx context.Context, e *Env, comp string, port int, test string,
	f func(p *corev1.Pod, r ctlserver.Result) string) (problems []string, err error) {
	pods, err := componentPods(ctx, e, comp)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, p := range pods {
		if !ready(p) {
			continue
		}
		n++
		rep, err := selfTest(ctx, e, p, port)
		if err != nil {
			problems = append(problems, "pod "+p.Name+": "+err.Error())
			continue
		}
		r, found := rep.Find(test)
		if !found {
			problems = append(problems, fmt.Sprintf("pod %s: its /selftest has no %q (is it older than this CLI?)", p.Name, test))
			continue
		}
		if s := f(p, r); s != "" {
			problems = append(problems, "pod "+p.Name+": "+s)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("no %s pod is ready", comp)
	}
	return problems, nil
}

// logsHint is the command showing a component's log.
func logsHint(e *Env, deploy, container string) string {
	return "kubectl -n " + e.ControlPlaneNS + " logs deploy/" + deploy + " -c " + container
}

func podsHint(e *Env, comp string) string {
	return "kubectl -n " + e.ControlPlaneNS + " get pods -l " + manifests.LabelComponent + "=" + comp
}
