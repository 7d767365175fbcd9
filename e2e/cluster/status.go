package cluster

import (
	"context"
	"time"

	"k8s.io/client-go/kubernetes"
)

// ComponentStatus is the state of one cluster process.
type ComponentStatus struct {
	Name    string // etcd, kube-apiserver, kube-controller-manager, weft-node
	Pid     int    // 0 when not running
	Healthy bool   // the component's health check passed
	Detail  string // "ok" or why it is not healthy
	Log     string // log file path
}

// StatusReport describes the local cluster.
type StatusReport struct {
	Kubeconfig string            // admin kubeconfig path
	Components []ComponentStatus // in start order
}

// Healthy reports whether every component is healthy.
func (r StatusReport) Healthy() bool {
	for _, c := range r.Components {
		if !c.Healthy {
			return false
		}
	}
	return len(r.Components) > 0
}

// Status inspects the local cluster without changing it.
func Status(ctx context.Context, cfg Config) (StatusReport, error) {
	p, err := resolvePaths(cfg)
	if err != nil {
		return StatusReport{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	r := StatusReport{Kubeconfig: p.kubeconfig()}
	rc, rcErr := restConfig(p.kubeconfig())
	for _, comp := range components(p) {
		s := ComponentStatus{Name: comp.name, Pid: readPid(p, comp), Log: logFile(p, comp.name)}
		if pids := strays(p, comp); s.Pid == 0 && len(pids) > 0 {
			s.Pid = pids[0] // running without a pid file (crashed weft-cluster); Down stops it
		}
		var err error
		switch {
		case s.Pid == 0:
			s.Detail = "not running"
			r.Components = append(r.Components, s)
			continue
		case comp.name == etcdName:
			err = etcdHealthy(ctx)
		case comp.name == kcmComp:
			err = kcmHealthy(ctx, p)
		case rcErr != nil:
			err = rcErr
		case comp.name == apiserverComp:
			err = apiserverReady(ctx, rc)
		case comp.name == nodeComp:
			var client *kubernetes.Clientset
			if client, err = kubernetes.NewForConfig(rc); err == nil {
				err = nodeReady(ctx, client)
			}
		}
		s.Healthy, s.Detail = err == nil, "ok"
		if err != nil {
			s.Detail = err.Error()
		}
		r.Components = append(r.Components, s)
	}
	return r, nil
}
