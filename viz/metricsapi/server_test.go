package metricsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftmesh/weft/viz/window"
)

func pod(name, rs, hash string) *corev1.Pod {
	ctrl := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name, Labels: map[string]string{"pod-template-hash": hash},
			Annotations:     map[string]string{"weft.io/proxy-version": "dev"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: rs, Controller: &ctrl}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "198.18.0.7"},
	}
}

// counting serves an exposition whose counters grow by 10 successes and
// 1 failure every scrape.
type counting struct {
	mu sync.Mutex
	n  int
}

func (c *counting) scrape(context.Context, *corev1.Pod) (io.ReadCloser, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	l := `direction="inbound",authority="web.demo.svc.cluster.local:80",tls="true"`
	return io.NopCloser(strings.NewReader(fmt.Sprintf("# TYPE response_total counter\nresponse_total{%s,status_code=\"200\",classification=\"success\"} %d\nresponse_total{%s,status_code=\"503\",classification=\"failure\"} %d\n", l, 10*c.n, l, c.n))), nil
}

func TestServerScrapesAndAnswers(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(pod("web-1", "web-abc", "abc"))
	c := &counting{}
	s, err := New(Config{Client: client, Interval: time.Hour, Span: 10 * time.Hour, Scrape: c.scrape})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.fact.Start(ctx.Done())
	s.fact.WaitForCacheSync(ctx.Done())
	for range 3 {
		s.Round(ctx)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + StatPath + "?resource=deploy&namespace=demo&window=10h")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	var rows []window.Row
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		t.Fatal(err)
	}
	// Three scrapes: the first is the baseline, two deltas of 11.
	if len(rows) != 1 || rows[0].Name != "web" || rows[0].Requests != 22 || rows[0].Meshed != 1 || *rows[0].Success != 20.0/22 {
		t.Fatalf("rows = %+v", rows)
	}
	for _, bad := range []string{"?resource=cronjob", "?resource=deploy&window=-1s", "", "?resource=deploy&from=deploy/a&to=deploy/b"} {
		r, err := http.Get(srv.URL + StatPath + bad)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("%q answered %d, want 400", bad, r.StatusCode)
		}
	}
	r, err := http.Post(srv.URL+StatPath+"?resource=deploy", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST answered %d: the API must be read-only", r.StatusCode)
	}
}
