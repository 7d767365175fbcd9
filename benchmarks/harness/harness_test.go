package harness

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestRunLoadHTTPAndTCP(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(payload) }))
	defer hs.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln)
	for _, tc := range []struct {
		kind   Kind
		target string
	}{
		{KindHTTP, strings.TrimPrefix(hs.URL, "http://")},
		{KindTCP, ln.Addr().String()},
	} {
		res, err := RunLoad(context.Background(), LoadConfig{Kind: tc.kind, Target: tc.target, RPS: 200, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond, Conns: 4})
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent != 100 || res.OK != 100 || res.Errors != 0 || res.Done != 120 {
			t.Errorf("%s: %+v", tc.kind, res)
		}
		if !(res.P50 > 0 && res.P50 <= res.P90 && res.P90 <= res.P99 && res.P99 <= res.P999 && res.P999 <= res.Max) {
			t.Errorf("%s: percentiles out of order: %+v", tc.kind, res)
		}
	}
}

func TestRunLoadCountsErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every request fails
	res, err := RunLoad(context.Background(), LoadConfig{Kind: KindTCP, Target: addr, RPS: 100, Duration: 200 * time.Millisecond, Conns: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 0 || res.Errors != res.Sent || res.FirstError == "" {
		t.Errorf("%+v", res)
	}
}

func TestReport(t *testing.T) {
	rs := []Result{
		{Peer: "direct", Point: Point{KindHTTP, 1000}, Load: LoadResult{P50: 1000, P90: 2000, P99: 3000, P999: 4000, AchievedRPS: 1000}},
		{Peer: "nginx", Point: Point{KindHTTP, 1000}, Load: LoadResult{P50: 1500, P90: 2500, P99: 5000, P999: 6000, AchievedRPS: 1000}, CPUMicrosPerReq: 50, CPUMicrosPerReqSide: [2]float64{30, 20}, PeakRSSKiB: 2048},
		{Peer: "weft", Point: Point{KindHTTP, 1000}, NotRun: "weft-proxy binary: missing"},
	}
	var md strings.Builder
	WriteMarkdown(&md, rs, "hdr")
	out := md.String()
	for _, want := range []string{"| http1 @ 1000 rps | nginx | 1000 | 0 | 1.50 | 2.50 | 5.00 | 6.00 | 0.50 | 0.50 | 2.00 | 2.00 | 50.0 (30 + 20) | 2.0 | 33333 |", "| weft | not run: weft-proxy binary: missing"} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	var svg strings.Builder
	WriteSVG(&svg, rs)
	if !strings.HasPrefix(svg.String(), "<svg") || strings.Count(svg.String(), "<rect x=") < 4 {
		t.Errorf("svg:\n%s", svg.String())
	}
}

func TestProcCPU(t *testing.T) {
	ticks, hwm, err := procCPU(os.Getpid())
	if err != nil || ticks < 0 || hwm <= 0 {
		t.Errorf("procCPU = %d, %d, %v", ticks, hwm, err)
	}
}

func TestPeerConfigs(t *testing.T) {
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_stream_module.so"); err != nil {
		t.Fatalf("nginx stream module missing: install libnginx-mod-stream (benchmarks/run.sh does): %v", err)
	}
	dir := t.TempDir()
	for _, k := range []Kind{KindHTTP, KindGRPC, KindTCP} {
		for _, p := range Peers {
			if p.Name != "nginx" && p.Name != "haproxy" {
				continue
			}
			args, _, err := p.Command(ProxySpec{Kind: k, Listen: "127.0.0.1:4140", Upstream: "198.18.128.3:8080", Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			var check []string
			if p.Name == "nginx" {
				check = append(args[:len(args)-2:len(args)-2], "-t", "-g", "daemon off; master_process off;")
			} else {
				check = append(args, "-c")
			}
			if out, err := execCombined(check); err != nil {
				t.Errorf("%s %s config invalid: %v\n%s", p.Name, k, err, out)
			}
		}
	}
}
