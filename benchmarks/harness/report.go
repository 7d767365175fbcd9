package harness

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"
)

// pointName is the row label of a point, e.g. "http1 @ 1000 rps".
func pointName(p Point) string { return fmt.Sprintf("%s @ %d rps", p.Kind, p.RPS) }

func baseline(rs []Result, p Point) *Result { return find(rs, "direct", p) }

// find returns peer's measured result at p, or nil.
func find(rs []Result, peer string, p Point) *Result {
	for i := range rs {
		if rs[i].Peer == peer && rs[i].Point == p && rs[i].NotRun == "" {
			return &rs[i]
		}
	}
	return nil
}

// addedMS is "p50 / p90 / p99 / p99.9" of r minus base in ms, or "–" without a base.
func addedMS(r, base *Result) string {
	if base == nil {
		return "–"
	}
	a, b := r.Load, base.Load
	return fmt.Sprintf("%s / %s / %s / %s", ms(a.P50-b.P50), ms(a.P90-b.P90), ms(a.P99-b.P99), ms(a.P999-b.P999))
}

// writeMeshSection writes the mTLS table: every result with handshake counts (the weft-mtls
// peer), its latency added over direct and over plaintext weft, CPU, and handshakes.
func writeMeshSection(w io.Writer, rs []Result) {
	var mesh []Result
	for _, r := range rs {
		if r.Handshakes != nil {
			mesh = append(mesh, r)
		}
	}
	if len(mesh) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "mTLS between the proxies (identity from the in-process identity service; handshakes from both proxies' `weft_tls_handshakes_total`):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| load | peer | added vs direct p50 / p90 / p99 / p99.9 ms | added vs weft (plaintext) p50 / p90 / p99 / p99.9 ms | proxy CPU µs/req (pair) | CPU vs weft | handshakes per 1 000 req (measured window) | window: client out full+resumed / server in full+resumed | warm-up: client out full+resumed |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for i := range mesh {
		r := &mesh[i]
		h := r.Handshakes
		cpuVs := "–"
		if plain := find(rs, "weft", r.Point); plain != nil && plain.CPUMicrosPerReq > 0 {
			cpuVs = fmt.Sprintf("%+.1f (%+.0f %%)", r.CPUMicrosPerReq-plain.CPUMicrosPerReq, (r.CPUMicrosPerReq/plain.CPUMicrosPerReq-1)*100)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.1f | %s | %.2f | %.0f+%.0f / %.0f+%.0f | %.0f+%.0f |\n",
			pointName(r.Point), r.Peer, addedMS(r, baseline(rs, r.Point)), addedMS(r, find(rs, "weft", r.Point)),
			r.CPUMicrosPerReq, cpuVs, h.PerThousand(),
			h.Client.OutboundFull, h.Client.OutboundResumed, h.Server.InboundFull, h.Server.InboundResumed,
			h.Warmup.OutboundFull, h.Warmup.OutboundResumed)
	}
}

func ms(us float64) string { return fmt.Sprintf("%.2f", us/1000) }

// WriteMarkdown writes the results table: absolute latency, latency added over direct, CPU per
// request (both proxies), peak RSS and the rps one core sustains at that CPU cost.
func WriteMarkdown(w io.Writer, rs []Result, header string) {
	fmt.Fprintln(w, header)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| load | peer | achieved rps | errors | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 | added p90 | added p99 | added p99.9 | proxy CPU µs/req (pair: client + server) | peak RSS MiB (per proxy) | rps per proxy core |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		name := pointName(r.Point)
		if r.NotRun != "" {
			reason := strings.ReplaceAll(r.NotRun, "|", "/")
			if len(reason) > 160 {
				reason = reason[:160] + "…"
			}
			fmt.Fprintf(w, "| %s | %s | not run: %s | | | | | | | | | | | | |\n", name, r.Peer, reason)
			continue
		}
		l := r.Load
		added := []string{"–", "–", "–", "–"}
		if b := baseline(rs, r.Point); b != nil && r.Peer != "direct" {
			for i, v := range []float64{l.P50 - b.Load.P50, l.P90 - b.Load.P90, l.P99 - b.Load.P99, l.P999 - b.Load.P999} {
				added[i] = ms(v)
			}
		}
		cpu, rss, perCore := "–", "–", "–"
		if r.CPUMicrosPerReq > 0 {
			side := r.CPUMicrosPerReqSide
			busiest := max(side[0], side[1])
			if busiest == 0 { // results without the split: assume an even one
				busiest = r.CPUMicrosPerReq / 2
				cpu = fmt.Sprintf("%.1f", r.CPUMicrosPerReq)
			} else {
				cpu = fmt.Sprintf("%.1f (%.0f + %.0f)", r.CPUMicrosPerReq, side[0], side[1])
			}
			// One core running the busier proxy of the pair at this cost per request.
			perCore = fmt.Sprintf("%.0f", 1e6/busiest)
		}
		if r.PeakRSSKiB > 0 {
			rss = fmt.Sprintf("%.1f", float64(r.PeakRSSKiB)/1024)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			name, r.Peer, l.AchievedRPS, l.Errors, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999),
			added[0], added[1], added[2], added[3], cpu, rss, perCore)
	}
	writeMeshSection(w, rs)
}

// WriteSVG draws three bar-chart panels, each with its own linear scale: p50 latency, p99
// latency (ms) and proxy CPU per request (µs, both proxies), grouped by load, one bar per peer.
func WriteSVG(w io.Writer, rs []Result) {
	var points []Point
	var peers []string
	seenP, seenPeer := map[Point]bool{}, map[string]bool{}
	for _, r := range rs {
		if !seenP[r.Point] {
			seenP[r.Point] = true
			points = append(points, r.Point)
		}
		if !seenPeer[r.Peer] {
			seenPeer[r.Peer] = true
			peers = append(peers, r.Peer)
		}
	}
	panels := []struct {
		title string
		value func(Result) float64
	}{
		{"p50 latency, ms (lower is better)", func(r Result) float64 { return r.Load.P50 / 1000 }},
		{"p99 latency, ms (lower is better; tails are noisy on a shared 2-core machine)", func(r Result) float64 { return r.Load.P99 / 1000 }},
		{"proxy CPU per request, µs, both proxies (lower is better; direct has none)", func(r Result) float64 { return r.CPUMicrosPerReq }},
	}
	colors := []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948"}
	const left, plotH, panelH, groupGap, barW = 60, 160, 230, 30, 18
	groupW := len(peers)*barW + groupGap
	width := left + len(points)*groupW + 170
	height := 20 + len(panels)*panelH
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for pi, panel := range panels {
		top := 40 + pi*panelH
		maxV := 0.0
		for _, r := range rs {
			if r.NotRun == "" {
				maxV = max(maxV, panel.value(r))
			}
		}
		if maxV == 0 {
			maxV = 1
		}
		y := func(v float64) float64 { return float64(top+plotH) - v/maxV*plotH }
		fmt.Fprintf(w, `<text x="%d" y="%d" font-size="13">%s</text>`+"\n", left, top-12, html.EscapeString(panel.title))
		for i := 0; i <= 4; i++ {
			v := maxV * float64(i) / 4
			fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.2f</text>`+"\n", left, width-170, y(v), y(v), left-5, y(v)+4, v)
		}
		for gi, p := range points {
			gx := left + gi*groupW + groupGap/2
			for k, peer := range peers {
				for _, r := range rs {
					if r.Point != p || r.Peer != peer {
						continue
					}
					x := gx + k*barW
					if r.NotRun != "" {
						fmt.Fprintf(w, `<text x="%d" y="%d" font-size="9" transform="rotate(-90 %d %d)">not run</text>`+"\n", x+12, top+plotH-2, x+12, top+plotH-2)
						continue
					}
					v := panel.value(r)
					fmt.Fprintf(w, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s %s: %.2f</title></rect>`+"\n",
						x, y(v), barW-2, float64(top+plotH)-y(v), colors[k%len(colors)], html.EscapeString(peer), pointName(p), v)
				}
			}
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", gx+len(peers)*barW/2, top+plotH+16, html.EscapeString(pointName(p)))
		}
	}
	for k, peer := range peers {
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			width-155, 40+k*18, colors[k%len(colors)], width-138, 40+k*18+10, html.EscapeString(peer))
	}
	fmt.Fprintln(w, "</svg>")
}

// ReadResults loads a results.json written by a previous run.
func ReadResults(r io.Reader) ([]Result, error) {
	var rs []Result
	if err := json.NewDecoder(r).Decode(&rs); err != nil {
		return nil, fmt.Errorf("decode results: %w", err)
	}
	return rs, nil
}
