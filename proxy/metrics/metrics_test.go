package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/detect"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
)

func render(t testing.TB, r *Registry) string {
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestExposition(t *testing.T) {
	r := New()
	peer := record.Peer{Authority: `web.demo:80`, TargetAddr: "10.0.0.1:8080",
		Labels: []record.Label{{Name: "dst_service", Value: "web"}}}
	r.ObserveHTTP(&record.HTTP{Direction: record.Outbound, Peer: peer, StatusCode: 200, GRPCStatus: -1, Latency: 3 * time.Millisecond})
	r.ObserveHTTP(&record.HTTP{Direction: record.Outbound, Peer: peer, StatusCode: 200, GRPCStatus: -1, Latency: 7 * time.Millisecond})
	r.ObserveHTTP(&record.HTTP{Direction: record.Outbound, Peer: peer, StatusCode: 502, GRPCStatus: -1,
		Err: errors.New("refused"), ErrKind: proxyerr.Connect})
	weird := record.Peer{Authority: "a\"b\\c\n", TargetAddr: "10.0.0.2:80"}
	r.ObserveHTTP(&record.HTTP{Direction: record.Inbound, Peer: weird, StatusCode: 404, GRPCStatus: -1})
	s := r.OpenTCP(record.Inbound, &record.Peer{Authority: "10.0.0.3:6379", TargetAddr: "10.0.0.3:6379"})
	s.AddRead(10)
	s.AddWritten(20)
	s.Close(false)
	r.OpenTCP(record.Inbound, &record.Peer{Authority: "10.0.0.3:6379", TargetAddr: "10.0.0.3:6379"})
	r.ObserveDetect(record.Outbound, detect.HTTP1, Detected)
	r.ObserveDetect(record.Inbound, detect.Opaque, Timeout)

	out := render(t, r)
	const base = `direction="outbound",authority="web.demo:80",target_addr="10.0.0.1:8080",tls="false",dst_service="web"`
	for _, want := range []string{
		`request_total{` + base + `} 3`,
		`response_total{` + base + `,status_code="200",classification="success",error=""} 2`,
		`response_total{` + base + `,status_code="502",classification="failure",error="connect_failed"} 1`,
		`response_latency_ms_bucket{` + base + `,status_code="200",classification="success",error="",le="3"} 1`,
		`response_latency_ms_bucket{` + base + `,status_code="200",classification="success",error="",le="10"} 2`,
		`response_latency_ms_bucket{` + base + `,status_code="200",classification="success",error="",le="+Inf"} 2`,
		`response_latency_ms_sum{` + base + `,status_code="200",classification="success",error=""} 10`,
		`tcp_open_total{direction="inbound",authority="10.0.0.3:6379",target_addr="10.0.0.3:6379",tls="false"} 2`,
		`tcp_open_connections{direction="inbound",authority="10.0.0.3:6379",target_addr="10.0.0.3:6379",tls="false"} 1`,
		`tcp_read_bytes_total{direction="inbound",authority="10.0.0.3:6379",target_addr="10.0.0.3:6379",tls="false"} 10`,
		`tcp_close_total{direction="inbound",authority="10.0.0.3:6379",target_addr="10.0.0.3:6379",tls="false",classification="success"} 1`,
		`weft_detect_total{direction="outbound",protocol="http1",result="detected"} 1`,
		`weft_detect_total{direction="inbound",protocol="opaque",result="timeout"} 1`,
		`weft_proxy_errors_total{direction="outbound",kind="connect_failed"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	if !strings.Contains(out, `authority="a\"b\\c\n"`) {
		t.Error("authority not escaped")
	}
	if errs := Promtool(t, out); len(errs) > 0 {
		t.Fatalf("promtool: %v\n%s", errs, out)
	}
}

// Promtool runs `promtool check metrics` and returns its complaints, except
// the one Linkerd compatibility forces on us: response_latency_ms carries an
// abbreviated unit in its name.
func Promtool(t testing.TB, exposition string) []string {
	t.Helper()
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	var problems []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" || l == "response_latency_ms metric names should not contain abbreviated units" {
			continue
		}
		problems = append(problems, l)
	}
	if err != nil && len(problems) == 0 {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run promtool: %v", err)
		}
	}
	return problems
}

func TestCardinalityCap(t *testing.T) {
	r := New()
	r.SetCaps(3, 1000)
	for i := range 10 {
		r.ObserveHTTP(&record.HTTP{Peer: record.Peer{Authority: fmt.Sprintf("h%d:80", i), TargetAddr: "1.1.1.1:80"}, StatusCode: 200})
	}
	out := render(t, r)
	if n := strings.Count(out, "request_total{"); n != 4 {
		t.Fatalf("%d request_total series, want 3 + overflow:\n%s", n, out)
	}
	if !strings.Contains(out, `request_total{direction="inbound",authority="overflow",target_addr="1.1.1.1:80",tls="false"} 7`) {
		t.Fatalf("no overflow series:\n%s", out)
	}
}

func TestRecordDoesNotRetainStrings(t *testing.T) {
	r := New()
	buf := []byte("mutable:80")
	h := &record.HTTP{Peer: record.Peer{Authority: string(buf), TargetAddr: "1.1.1.1:80"}, StatusCode: 200}
	r.ObserveHTTP(h)
	h.Peer.Authority = "other:80"
	r.ObserveHTTP(h)
	if out := render(t, r); !strings.Contains(out, `authority="mutable:80"`) || !strings.Contains(out, `authority="other:80"`) {
		t.Fatal(out)
	}
}

func BenchmarkObserveHTTP(b *testing.B) {
	r := New()
	h := &record.HTTP{Direction: record.Outbound, Peer: record.Peer{Authority: "web.demo:80", TargetAddr: "10.0.0.1:8080"},
		StatusCode: 200, GRPCStatus: -1, Latency: 12 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		r.ObserveHTTP(h)
	}
}

func BenchmarkObserveHTTPParallel(b *testing.B) {
	r := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		h := &record.HTTP{Direction: record.Outbound, Peer: record.Peer{Authority: "web.demo:80", TargetAddr: "10.0.0.1:8080"},
			StatusCode: 200, GRPCStatus: -1, Latency: 12 * time.Millisecond}
		for pb.Next() {
			r.ObserveHTTP(h)
		}
	})
}

func BenchmarkOpenTCP(b *testing.B) {
	r := New()
	p := &record.Peer{Authority: "10.0.0.3:6379", TargetAddr: "10.0.0.3:6379"}
	b.ReportAllocs()
	for b.Loop() {
		s := r.OpenTCP(record.Inbound, p)
		s.AddRead(100)
		s.Close(false)
	}
}
