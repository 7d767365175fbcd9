package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/weftmesh/weft/viz/tap"
	"github.com/weftmesh/weft/viz/top"
)

// topOnceDuration is how long --once taps without --duration.
const topOnceDuration = 10 * time.Second

func vizTopCmd(g *globals) *cobra.Command {
	f := &tapFlags{}
	var hideSources, once, routes bool
	cmd := &cobra.Command{
		Use:   "top RESOURCE",
		Short: "A live table of a resource's requests by source, destination and path",
		Long: `top taps RESOURCE (as weft viz tap does) and keeps a table, refreshed every
second and sorted by count: Source, Destination, Method, Path, Count, the best,
worst and last latency (to the response's first byte) and the success rate;
--routes groups by ServiceProfile route instead of path.
q or Ctrl-C quits and restores the terminal. When the output is not a
terminal, or with --once, it prints the table once when the tap ends
(--duration, default 10s with --once).`,
		Example: `  weft viz top deploy/web -n demo
  weft viz top deploy/traffic -n demo --to svc/books --hide-sources
  weft viz top deploy/books -n demo --once --duration 10s`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if once && f.duration == 0 {
				f.duration = topOnceDuration
			}
			t, cs, stream, err := f.start(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			defer stream.Close()
			table := &top.Table{HideSources: hideSources}
			if routes {
				table.Route = newProfileRoutes(cmd.Context(), cs, cmd.ErrOrStderr()).Route
			}
			cols := top.Columns{HideSources: hideSources, Routes: routes}
			out := cmd.OutOrStdout()
			if file, ok := out.(*os.File); ok && !once && term.IsTerminal(int(file.Fd())) {
				title := "weft viz top " + args[0] + " -n " + t.Namespace
				return runTopUI(cmd.Context(), file, stream, table, cols, title)
			}
			if err := feedTop(tap.NewDecoder(stream), table); err != nil && cmd.Context().Err() == nil {
				return err
			}
			return top.Write(out, table.Rows(), cols, 0)
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&hideSources, "hide-sources", false, "merge the rows of every source (no Source column)")
	cmd.Flags().BoolVar(&once, "once", false, "print the table once when the tap ends instead of a live view")
	cmd.Flags().BoolVar(&routes, "routes", false, "one row per ServiceProfile route instead of per path ([DEFAULT]: no route matched)")
	return cmd
}

// feedTop adds every event of d to table until the stream ends.
func feedTop(d *tap.Decoder, table *top.Table) error {
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		table.Add(ev)
	}
}

// topModel is the live view: it redraws the table every second.
type topModel struct {
	table   *top.Table
	cols    top.Columns
	title   string
	started time.Time
	height  int
	ended   error // the stream's end (nil while it runs)
	done    bool
}

type (
	topTick  time.Time
	topEnded struct{ err error }
)

func tickTop() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return topTick(t) })
}

func (m *topModel) Init() tea.Cmd { return tickTop() }

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.height = msg.Height
	case topTick:
		return m, tickTop()
	case topEnded:
		// The tap ended (--duration, --max, or the API server): leave the
		// full screen; runTopUI prints the final table.
		m.done, m.ended = true, msg.err
		return m, tea.Quit
	}
	return m, nil
}

// View draws the table on the alternate screen (restored on exit).
func (m *topModel) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	return v
}

func (m *topModel) render() string {
	var b strings.Builder
	state := fmt.Sprintf("%s — %s", m.title, time.Since(m.started).Round(time.Second))
	if m.done {
		state += " — tap ended"
		if m.ended != nil {
			state += ": " + m.ended.Error()
		}
	}
	fmt.Fprintf(&b, "%s   (q to quit)\n\n", state)
	limit := 0
	if m.height > 4 {
		limit = m.height - 4 // title, blank line, header, cursor line
	}
	_ = top.Write(&b, m.table.Rows(), m.cols, limit)
	return b.String()
}

// runTopUI shows the live table on out (a terminal) until q, Ctrl-C or ctx,
// or until the tap ends: then it prints the final table on the normal
// screen.
func runTopUI(ctx context.Context, out *os.File, stream io.Reader, table *top.Table, cols top.Columns, title string) error {
	m := &topModel{table: table, cols: cols, started: time.Now(), title: title}
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithOutput(out))
	go func() {
		err := feedTop(tap.NewDecoder(stream), table)
		p.Send(topEnded{err: err})
	}()
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		return nil // interrupted: the terminal is restored
	}
	if err != nil || !m.done {
		return err // quit by the user, or the terminal failed
	}
	if m.ended != nil && ctx.Err() == nil {
		return m.ended
	}
	return top.Write(out, table.Rows(), cols, 0)
}
