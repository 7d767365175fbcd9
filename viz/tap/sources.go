package tap

import (
	"context"
	"net"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// podIPs names the workload behind an inbound request's source address
// (the client pod's IP), with a short-lived cache: the proxy only knows the
// client's address and identity.
type podIPs struct {
	client kubernetes.Interface
	ttl    time.Duration

	mu sync.Mutex
	m  map[string]podIPEntry
}

type podIPEntry struct {
	ns, workload string
	at           time.Time
}

// maxPodIPs bounds the cache; it is cleared when full.
const maxPodIPs = 4096

// enrich sets ev's SourceWorkload for inbound events from a pod.
func (c *podIPs) enrich(ctx context.Context, ev *Event) {
	if ev.Event.GetDirection() != "inbound" {
		return
	}
	host, _, err := net.SplitHostPort(ev.Event.GetSourceAddr())
	if err != nil {
		return
	}
	e := c.lookup(ctx, host)
	ev.SourceNamespace, ev.SourceWorkload = e.ns, e.workload
}

func (c *podIPs) lookup(ctx context.Context, ip string) podIPEntry {
	c.mu.Lock()
	e, ok := c.m[ip]
	c.mu.Unlock()
	if ok && time.Since(e.at) < c.ttl {
		return e
	}
	e = podIPEntry{at: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	list, err := c.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.podIP=" + ip})
	if err == nil {
		for i := range list.Items {
			p := &list.Items[i]
			if !p.Spec.HostNetwork {
				e.ns, e.workload = p.Namespace, WorkloadOf(p)
				break
			}
		}
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxPodIPs {
		c.m = map[string]podIPEntry{}
	}
	c.m[ip] = e
	c.mu.Unlock()
	return e
}
