package healthcheck

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// DocsURL is where every warning and failure points, followed by #<id>.
const DocsURL = "docs/checks.md"

var symbols = map[Result]string{OK: "√", Warning: "‼", Failure: "×"}

// WriteTable prints outcomes grouped by category, one line per check, each
// warning and failure followed by what was found, the fix and its docs
// anchor, then the summary line.
func WriteTable(w io.Writer, outcomes []Outcome) error {
	var b strings.Builder
	cat := ""
	for _, o := range outcomes {
		if o.Category != cat {
			if cat != "" {
				b.WriteString("\n")
			}
			cat = o.Category
			fmt.Fprintf(&b, "%s\n%s\n", cat, strings.Repeat("-", len(cat)))
		}
		fmt.Fprintf(&b, "%s %s\n", symbols[o.Result], o.Description)
		if o.Result != OK {
			writeDetail(&b, o)
		}
	}
	fmt.Fprintf(&b, "\n%s\n", Summary(outcomes))
	_, err := io.WriteString(w, b.String())
	return err
}

func writeDetail(b *strings.Builder, o Outcome) {
	for _, l := range strings.Split(o.Message, "\n") {
		fmt.Fprintf(b, "    %s\n", l)
	}
	if o.Hint != "" {
		for i, l := range strings.Split(o.Hint, "\n") {
			prefix := "    fix: "
			if i > 0 {
				prefix = "         "
			}
			fmt.Fprintf(b, "%s%s\n", prefix, l)
		}
	}
	fmt.Fprintf(b, "    see %s#%s\n", DocsURL, o.ID)
}

// WriteShort prints only warnings and failures, then the summary line.
func WriteShort(w io.Writer, outcomes []Outcome) error {
	var b strings.Builder
	for _, o := range outcomes {
		if o.Result == OK {
			continue
		}
		fmt.Fprintf(&b, "%s %s: %s\n", symbols[o.Result], o.Category, o.Description)
		writeDetail(&b, o)
	}
	b.WriteString(Summary(outcomes) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Report is the JSON document of `weft check -o json`.
type Report struct {
	// Success is false when the run exits 1.
	Success  bool      `json:"success"`
	Failures int       `json:"failures"`
	Warnings int       `json:"warnings"`
	Checks   []Outcome `json:"checks"`
}

// WriteJSON prints the Report of outcomes.
func WriteJSON(w io.Writer, outcomes []Outcome, strict bool) error {
	r := Report{Success: !Failed(outcomes, strict), Checks: outcomes}
	r.Failures, r.Warnings = count(outcomes)
	if r.Checks == nil {
		r.Checks = []Outcome{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func count(outcomes []Outcome) (failures, warnings int) {
	for _, o := range outcomes {
		switch o.Result {
		case Failure:
			failures++
		case Warning:
			warnings++
		}
	}
	return failures, warnings
}

// Summary is the last line: "Status check results are √" or
// "× 2 failures, ‼ 1 warning".
func Summary(outcomes []Outcome) string {
	f, w := count(outcomes)
	var parts []string
	if f > 0 {
		parts = append(parts, fmt.Sprintf("× %d %s", f, plural(f, "failure")))
	}
	if w > 0 {
		parts = append(parts, fmt.Sprintf("‼ %d %s", w, plural(w, "warning")))
	}
	if len(parts) == 0 {
		return "Status check results are √"
	}
	return strings.Join(parts, ", ")
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}
