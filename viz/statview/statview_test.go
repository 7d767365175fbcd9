package statview

import (
	"bytes"
	"strings"
	"testing"

	"github.com/weftmesh/weft/viz/window"
)

func TestRoutesTable(t *testing.T) {
	t.Parallel()
	one, half := 1.0, 0.5
	p50 := 7.4
	rows := []window.RouteRow{
		{Route: "GET /books", Authority: "books.demo.svc.cluster.local:80", Signals: window.Signals{Requests: 20, Success: &one, RPS: 2, P50: &p50}, ActualRequests: 25, ActualSuccess: &half, ActualRPS: 2.5},
		{Route: window.DefaultRoute, Authority: "books.demo.svc.cluster.local:80", Signals: window.Signals{Requests: 10, Success: &half, RPS: 1}, ActualRequests: 10, ActualSuccess: &half, ActualRPS: 1},
	}
	tests := []struct {
		format string
		want   []string // lines, fields split on runs of spaces
	}{
		{Table, []string{
			"ROUTE AUTHORITY SUCCESS RPS LATENCY_P50 LATENCY_P95 LATENCY_P99",
			"GET /books books.demo.svc.cluster.local:80 100.00% 2.0rps 7ms - -",
			"[DEFAULT] books.demo.svc.cluster.local:80 50.00% 1.0rps - - -",
		}},
		{Wide, []string{
			"ROUTE AUTHORITY SUCCESS RPS LATENCY_P50 LATENCY_P95 LATENCY_P99 ACTUAL_SUCCESS ACTUAL_RPS",
			"GET /books books.demo.svc.cluster.local:80 100.00% 2.0rps 7ms - - 50.00% 2.5rps",
			"[DEFAULT] books.demo.svc.cluster.local:80 50.00% 1.0rps - - - 50.00% 1.0rps",
		}},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := Routes(&b, rows, tt.format); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		if len(lines) != len(tt.want) {
			t.Fatalf("%s:\n%s", tt.format, b.String())
		}
		for i, l := range lines {
			if got := strings.Join(strings.Fields(l), " "); got != tt.want[i] {
				t.Errorf("%s line %d = %q, want %q", tt.format, i, got, tt.want[i])
			}
		}
	}
}
