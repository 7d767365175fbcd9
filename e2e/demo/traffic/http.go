package traffic

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"text/tabwriter"
	"time"
)

// Report is the /stats document.
type Report struct {
	// Since is when the figures started: the generator's start or the last reset.
	Since   time.Time     `json:"since"`
	Targets []TargetStats `json:"targets"`
}

// StatsHandler serves the generator's stats: GET returns JSON by default, an aligned text table
// with ?format=table; POST with ?reset (POST /stats?reset=1) zeroes the figures.
func (g *Generator) StatsHandler() http.Handler {
	var mu sync.Mutex
	since := time.Now().UTC()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if !r.URL.Query().Has("reset") {
				http.Error(w, "POST /stats needs ?reset", http.StatusBadRequest)
				return
			}
			mu.Lock()
			g.Reset()
			since = time.Now().UTC()
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		mu.Lock()
		rep := Report{Since: since, Targets: g.Snapshot()}
		mu.Unlock()
		switch r.URL.Query().Get("format") {
		case "", "json":
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		case "table":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			WriteTable(w, rep.Targets)
		default:
			http.Error(w, fmt.Sprintf("format %q: want json or table", r.URL.Query().Get("format")), http.StatusBadRequest)
		}
	})
}

// WriteTable writes stats as an aligned table: TARGET REQUESTS SUCCESS P50 P99.
func WriteTable(w interface{ Write([]byte) (int, error) }, targets []TargetStats) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tRATE\tREQUESTS\tSUCCESS\tP50\tP99\tLAST ERROR")
	for _, t := range targets {
		fmt.Fprintf(tw, "%s\t%g/s\t%d\t%.1f%%\t%.1fms\t%.1fms\t%s\n",
			t.Name, t.Rate, t.Requests, 100*t.SuccessRate(), t.P50Ms, t.P99Ms, truncate(t.LastError, 60))
	}
	_ = tw.Flush()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
