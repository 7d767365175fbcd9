package harness

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// pointName is the row label of a point, e.g. "http1 @ 1000 rps".
func pointName(p Point) string { return fmt.Sprintf("%s @ %d rps", p.Kind, p.RPS) }

func baseline(rs []Result, p Point) *Result {
	for i := range rs {
		if rs[i].Peer == "direct" && rs[i].Point == p && rs[i].NotRun == "" {
			return &rs[i]
		}
	}
	return nil
}

func ms(us float64) string { return fmt.Sprintf("%.2f", us/1000) }

// WriteMarkdown writes the results table: absolute latency, latency added over direct, CPU per
// request (both proxies), peak RSS and the rps one core sustains at that CPU cost.
func WriteMarkdown(w io.Writer, rs []Result, header string) {
	fmt.Fprintln(w, header)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| load | peer | achieved rps | errors | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 | added p90 | added p99 | added p99.9 | proxy CPU µs/req (pair) | peak RSS MiB (per proxy) | rps per proxy core |")
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
			cpu = fmt.Sprintf("%.1f", r.CPUMicrosPerReq)
			// Each request crosses two proxies: one proxy spends half the pair's CPU.
			perCore = fmt.Sprintf("%.0f", 1e6/(r.CPUMicrosPerReq/2))
		}
		if r.PeakRSSKiB > 0 {
			rss = fmt.Sprintf("%.1f", float64(r.PeakRSSKiB)/1024)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			name, r.Peer, l.AchievedRPS, l.Errors, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999),
			added[0], added[1], added[2], added[3], cpu, rss, perCore)
	}
}

// WriteSVG draws grouped bars of p50 and p99 latency (ms, log-free linear scale) per load and peer.
func WriteSVG(w io.Writer, rs []Result) {
	var points []Point
	var peers []string
	seenP, seenPeer := map[Point]bool{}, map[string]bool{}
	maxV := 0.0
	for _, r := range rs {
		if !seenP[r.Point] {
			seenP[r.Point] = true
			points = append(points, r.Point)
		}
		if !seenPeer[r.Peer] {
			seenPeer[r.Peer] = true
			peers = append(peers, r.Peer)
		}
		maxV = max(maxV, r.Load.P99/1000)
	}
	if maxV == 0 {
		maxV = 1
	}
	colors := []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948"}
	const left, top, plotH, groupGap, barW = 60, 40, 300, 30, 14
	groupW := len(peers)*barW*2 + groupGap
	width := left + len(points)*groupW + 180
	height := top + plotH + 60
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="20" font-size="14">Latency per load: p50 (solid) and p99 (light), ms — lower is better</text>`+"\n", left)
	y := func(v float64) float64 { return top + plotH - v/maxV*plotH }
	for i := 0; i <= 4; i++ {
		v := maxV * float64(i) / 4
		fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.2f</text>`+"\n", left, width-180, y(v), y(v), left-5, y(v)+4, v)
	}
	for gi, p := range points {
		gx := left + gi*groupW + groupGap/2
		for pi, peer := range peers {
			for _, r := range rs {
				if r.Point != p || r.Peer != peer || r.NotRun != "" {
					continue
				}
				x := gx + pi*barW*2
				c := colors[pi%len(colors)]
				for k, v := range []float64{r.Load.P50 / 1000, r.Load.P99 / 1000} {
					op := []string{"1", "0.45"}[k]
					fmt.Fprintf(w, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s" fill-opacity="%s"><title>%s %s p%s %.2f ms</title></rect>`+"\n",
						x+k*barW, y(v), barW, top+plotH-y(v), c, op, html.EscapeString(peer), pointName(p), []string{"50", "99"}[k], v)
				}
			}
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", gx+len(peers)*barW, top+plotH+18, html.EscapeString(pointName(p)))
	}
	for pi, peer := range peers {
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			width-165, top+pi*18, colors[pi%len(colors)], width-148, top+pi*18+10, html.EscapeString(peer))
	}
	fmt.Fprintln(w, "</svg>")
}
