package tap

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/internal/workload"
	"github.com/weftmesh/weft/viz/window"
)

// ProxyTapPort is where every proxy serves tap.
const ProxyTapPort = 4190

// Event is one proxy event with the pod it came from: what the API streams,
// one JSON object per line.
type Event struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	// Workload owns Pod, as TYPE/NAME (deploy/web), po/NAME without owner.
	Workload string `json:"workload,omitempty"`
	// SourceNamespace and SourceWorkload name the client pod of an
	// inbound request, when its address is a pod's.
	SourceNamespace string       `json:"sourceNamespace,omitempty"`
	SourceWorkload  string       `json:"sourceWorkload,omitempty"`
	Event           *tapv1.Event `json:"-"`
}

// WorkloadOf names the workload that owns p as TYPE/NAME in the short
// types of viz stat (deploy/web, sts/db, po/NAME without owner).
func WorkloadOf(p *corev1.Pod) string {
	kind, name := workload.Owner(p)
	return window.ShortType(kind) + "/" + name
}

// Source opens a pod's event stream.
type Source interface {
	Observe(ctx context.Context, pod *corev1.Pod, req *tapv1.ObserveRequest) (func() (*tapv1.Event, error), error)
}

// MTLSSource dials each pod's proxy tap port over mTLS with SVIDs, and
// expects the pod's own identity (its ServiceAccount) from the proxy.
type MTLSSource struct {
	SVIDs       x509svid.Source
	Bundle      x509bundle.Source
	TrustDomain string
	// Port of the proxies' tap server; 0 means ProxyTapPort.
	Port int
}

// Ready reports why the component's own certificate is not usable yet.
func (s *MTLSSource) Ready() error {
	_, err := s.SVIDs.GetX509SVID()
	return err
}

// Observe implements Source.
func (s *MTLSSource) Observe(ctx context.Context, pod *corev1.Pod, req *tapv1.ObserveRequest) (func() (*tapv1.Event, error), error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	want, err := spiffeid.FromString("spiffe://" + s.TrustDomain + "/ns/" + pod.Namespace + "/sa/" + sa)
	if err != nil {
		return nil, fmt.Errorf("identity of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	tc := tlsconfig.MTLSClientConfig(s.SVIDs, s.Bundle, tlsconfig.AuthorizeID(want))
	port := s.Port
	if port == 0 {
		port = ProxyTapPort
	}
	addr := net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port))
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		return nil, fmt.Errorf("tap %s/%s at %s: %w", pod.Namespace, pod.Name, addr, err)
	}
	st, err := tapv1.NewTapClient(cc).Observe(ctx, req)
	if err != nil {
		_ = cc.Close()
		return nil, fmt.Errorf("tap %s/%s at %s: %w", pod.Namespace, pod.Name, addr, err)
	}
	return func() (*tapv1.Event, error) {
		ev, err := st.Recv()
		if err != nil {
			_ = cc.Close()
		}
		return ev, err
	}, nil
}

// Merger taps a changing set of pods and merges their streams.
type Merger struct {
	Source Source
	// Pods lists the pods to tap now; polled every Follow.
	Pods func(ctx context.Context) ([]corev1.Pod, error)
	// Follow is the pod poll interval; 0 means 2s.
	Follow time.Duration
	// OnError reports a pod whose stream failed (it is retried on the next
	// poll); nil ignores.
	OnError func(pod string, err error)
	// Enrich, when set, completes each admitted event before it is emitted.
	Enrich func(ctx context.Context, ev *Event)
}

// Run taps until ctx ends or limit requests were seen (0: no limit), calling
// emit for each event from one goroutine. Events of requests beyond the
// limit are dropped; the responses of admitted requests are still emitted
// until ctx ends or every admitted request ended.
func (m *Merger) Run(ctx context.Context, req *tapv1.ObserveRequest, limit int, emit func(Event) error) error {
	ctx, cancel := context.WithCancel(ctx)
	follow := m.Follow
	if follow <= 0 {
		follow = 2 * time.Second
	}
	events := make(chan Event, 64)
	var (
		mu      sync.Mutex
		running = map[string]bool{}
		wg      sync.WaitGroup
	)
	// Cancel the streams first, then wait for their goroutines.
	defer func() { cancel(); wg.Wait() }()
	start := func(p corev1.Pod) {
		key := p.Namespace + "/" + p.Name + "/" + p.Status.PodIP
		mu.Lock()
		if running[key] {
			mu.Unlock()
			return
		}
		running[key] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { mu.Lock(); delete(running, key); mu.Unlock() }()
			workload := WorkloadOf(&p)
			recv, err := m.Source.Observe(ctx, &p, req)
			for err == nil {
				var ev *tapv1.Event
				if ev, err = recv(); err == nil {
					select {
					case events <- Event{Namespace: p.Namespace, Pod: p.Name, Workload: workload, Event: ev}:
					case <-ctx.Done():
						return
					}
				}
			}
			if ctx.Err() == nil && m.OnError != nil {
				m.OnError(p.Namespace+"/"+p.Name, err)
			}
		}()
	}
	poll := func() error {
		pods, err := m.Pods(ctx)
		for _, p := range pods {
			start(p)
		}
		return err
	}
	if err := poll(); err != nil {
		return err
	}
	tick := time.NewTicker(follow)
	defer tick.Stop()
	lim := limiter{limit: limit, open: map[string]bool{}}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			_ = poll() // a failed poll keeps the current streams
		case ev := <-events:
			keep, done := lim.admit(ev)
			if keep && m.Enrich != nil {
				m.Enrich(ctx, &ev)
			}
			if keep {
				if err := emit(ev); err != nil {
					return err
				}
			}
			if done {
				return nil
			}
		}
	}
}

// limiter enforces a request limit across merged streams: it keeps the
// first limit requests and their responses and ends.
type limiter struct {
	limit, seen int
	open        map[string]bool // exchanges admitted and not ended
}

func (l *limiter) admit(ev Event) (keep, done bool) {
	key := ev.Namespace + "/" + ev.Pod + "/" + strconv.FormatUint(ev.Event.GetId(), 10)
	switch ev.Event.GetKind().(type) {
	case *tapv1.Event_Request:
		if l.limit > 0 && l.seen >= l.limit {
			return false, false
		}
		l.seen++
		l.open[key] = true
		return true, false
	case *tapv1.Event_Lost:
		return true, false
	case *tapv1.Event_End:
		if !l.open[key] {
			return false, false
		}
		delete(l.open, key)
		return true, l.limit > 0 && l.seen >= l.limit && len(l.open) == 0
	default:
		return l.open[key], false
	}
}
