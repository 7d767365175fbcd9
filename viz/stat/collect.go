package stat

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/internal/workload"
)

// AdminPort is the proxy's admin port (/metrics).
const AdminPort = 4191

// Scraper fetches a pod's proxy metrics.
type Scraper interface {
	Scrape(ctx context.Context, pod *corev1.Pod) (io.ReadCloser, error)
}

// APIServerProxy scrapes through the Kubernetes API server's pod proxy
// (pods/proxy), which works wherever kubectl does.
type APIServerProxy struct{ Client kubernetes.Interface }

// Scrape implements Scraper.
func (a APIServerProxy) Scrape(ctx context.Context, pod *corev1.Pod) (io.ReadCloser, error) {
	return a.Get(ctx, pod, AdminPort, "/metrics")
}

// Get fetches path from port of pod over plain HTTP through the pod proxy
// (weft check reaches control-plane admin ports this way too).
func (a APIServerProxy) Get(ctx context.Context, pod *corev1.Pod, port int, path string) (io.ReadCloser, error) {
	rc, err := a.Client.CoreV1().Pods(pod.Namespace).ProxyGet("http", pod.Name, strconv.Itoa(port), path, nil).Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("get %s:%d%s of %s/%s: %w", "http", port, path, pod.Namespace, pod.Name, err)
	}
	return rc, nil
}

// Row is one workload's figures over the window.
type Row struct {
	Kind, Name string
	// Pods running, and how many of them are meshed.
	Pods, Meshed int
	// Success is the success rate (0..1); NaN without traffic.
	Success float64
	RPS     float64
	// P50, P95, P99 latency in ms; NaN without traffic.
	P50, P95, P99 float64
	TCPConn       float64
}

// Collect scrapes every meshed pod of namespace twice, window apart, and
// returns one row per workload, sorted by kind and name. Pods that cannot be
// scraped are counted as meshed but contribute no traffic; the error lists
// them.
func Collect(ctx context.Context, client kubernetes.Interface, namespace string, window time.Duration, scr Scraper) ([]Row, error) {
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", namespace, err)
	}
	rows := map[string]*Row{}
	var meshed []*corev1.Pod
	owner := map[*corev1.Pod]*Row{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		kind, name := workload.Owner(p)
		key := kind + "/" + name
		r := rows[key]
		if r == nil {
			r = &Row{Kind: kind, Name: name}
			rows[key] = r
		}
		r.Pods++
		if _, ok := p.Annotations[annotations.ProxyVersion]; ok {
			r.Meshed++
			meshed = append(meshed, p)
			owner[p] = r
		}
	}
	if len(rows) == 0 {
		// Nothing runs: no need to wait the window to say so.
		return nil, nil
	}
	first, errs1 := scrapeAll(ctx, scr, meshed)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(window):
	}
	second, errs2 := scrapeAll(ctx, scr, meshed)
	traffic := map[*Row]*Sample{}
	for _, p := range meshed {
		a, okA := first[p]
		b, okB := second[p]
		if !okA || !okB {
			continue
		}
		r := owner[p]
		if traffic[r] == nil {
			traffic[r] = &Sample{}
		}
		traffic[r].Add(b.Sub(a))
	}
	out := make([]Row, 0, len(rows))
	for _, r := range rows {
		s := traffic[r]
		if s == nil {
			s = &Sample{}
		}
		r.Success, r.RPS, r.TCPConn = math.NaN(), s.Total()/window.Seconds(), s.TCPOpen
		if s.Total() > 0 {
			r.Success = s.Success / s.Total()
		}
		r.P50, r.P95, r.P99 = s.Quantile(0.5), s.Quantile(0.95), s.Quantile(0.99)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	if errs := append(errs1, errs2...); len(errs) > 0 {
		return out, fmt.Errorf("%d scrapes failed, first: %w", len(errs), errs[0])
	}
	return out, nil
}

func scrapeAll(ctx context.Context, scr Scraper, pods []*corev1.Pod) (map[*corev1.Pod]Sample, []error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		out  = map[*corev1.Pod]Sample{}
		errs []error
	)
	for _, p := range pods {
		wg.Go(func() {
			s, err := scrapeOne(ctx, scr, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out[p] = s
		})
	}
	wg.Wait()
	return out, errs
}

func scrapeOne(ctx context.Context, scr Scraper, p *corev1.Pod) (Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, err := scr.Scrape(ctx, p)
	if err != nil {
		return Sample{}, err
	}
	defer rc.Close()
	return Parse(rc)
}

// WriteTable prints rows with Linkerd viz stat's columns.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMESHED\tSUCCESS\tRPS\tLATENCY_P50\tLATENCY_P95\tLATENCY_P99\tTCP_CONN")
	for _, r := range rows {
		success, rps := "-", "-"
		if !math.IsNaN(r.Success) {
			success = strconv.FormatFloat(100*r.Success, 'f', 2, 64) + "%"
		}
		if r.Meshed > 0 {
			rps = strconv.FormatFloat(r.RPS, 'f', 1, 64) + "rps"
		}
		fmt.Fprintf(tw, "%s/%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\t%.0f\n",
			kindShort(r.Kind), r.Name, r.Meshed, r.Pods, success, rps,
			formatMs(r.P50), formatMs(r.P95), formatMs(r.P99), r.TCPConn)
	}
	return tw.Flush()
}

func kindShort(kind string) string {
	switch kind {
	case "Deployment":
		return "deploy"
	case "StatefulSet":
		return "sts"
	case "DaemonSet":
		return "ds"
	case "Job":
		return "job"
	case "Pod":
		return "po"
	}
	return kind
}
