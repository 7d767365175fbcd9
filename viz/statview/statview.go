// Package statview renders the metrics window's answers for the terminal:
// Linkerd viz's columns for stat, routes and edges, as table, wide or JSON.
package statview

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"

	"github.com/weftmesh/weft/viz/window"
)

// Formats.
const (
	Table = "table"
	Wide  = "wide"
	JSON  = "json"
)

// CheckFormat returns an error for an unknown -o value.
func CheckFormat(f string) error {
	switch f {
	case Table, Wide, JSON:
		return nil
	}
	return fmt.Errorf("unknown output format %q: use table, wide or json", f)
}

func pct(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(100**v, 'f', 2, 64) + "%"
}

func ms(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(math.Round(*v), 'f', -1, 64) + "ms"
}

func rps(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + "rps" }

// Stat writes stat rows; all adds a NAMESPACE column.
func Stat(w io.Writer, rows []window.Row, format string, all bool) error {
	if format == JSON {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	if all {
		fmt.Fprint(tw, "NAMESPACE\t")
	}
	fmt.Fprint(tw, "NAME\tMESHED\tSUCCESS\tRPS\tLATENCY_P50\tLATENCY_P95\tLATENCY_P99\tTCP_CONN")
	if format == Wide {
		fmt.Fprint(tw, "\tREAD_BYTES/SEC\tWRITE_BYTES/SEC\tMTLS")
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		if all {
			fmt.Fprintf(tw, "%s\t", r.Namespace)
		}
		meshed := "-"
		if r.Pods > 0 {
			meshed = fmt.Sprintf("%d/%d", r.Meshed, r.Pods)
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f", r.Type, r.Name, meshed, pct(r.Success), rps(r.RPS),
			ms(r.P50), ms(r.P95), ms(r.P99), r.TCPConn)
		if format == Wide {
			fmt.Fprintf(tw, "\t%.1fB/s\t%.1fB/s\t%s", r.ReadBps, r.WriteBps, pct(r.TLSShare))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// Routes writes route rows.
func Routes(w io.Writer, rows []window.RouteRow, format string) error {
	if format == JSON {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprint(tw, "ROUTE\tAUTHORITY\tSUCCESS\tRPS\tLATENCY_P50\tLATENCY_P95\tLATENCY_P99")
	if format == Wide {
		fmt.Fprint(tw, "\tACTUAL_SUCCESS\tACTUAL_RPS")
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s", r.Route, r.Authority, pct(r.Success), rps(r.RPS), ms(r.P50), ms(r.P95), ms(r.P99))
		if format == Wide {
			fmt.Fprintf(tw, "\t%s\t%s", pct(r.ActualSuccess), rps(r.ActualRPS))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// Edges writes edge rows.
func Edges(w io.Writer, rows []window.Edge, format string) error {
	if format == JSON {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprint(tw, "SRC\tDST\tSRC_NS\tDST_NS\tSECURED")
	if format == Wide {
		fmt.Fprint(tw, "\tCLIENT_ID\tSERVER_ID\tSUCCESS\tRPS")
	}
	fmt.Fprintln(tw)
	for _, e := range rows {
		sec := "√"
		if !e.Secured {
			sec = "×"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", e.Src, e.Dst, e.SrcNamespace, e.DstNamespace, sec)
		if format == Wide {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s", dash(e.ClientID), dash(e.ServerID), pct(e.Success), rps(e.RPS))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
