package command

import (
	"errors"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/weftmesh/weft/viz/top"
)

// TestTopModel: the live view quits on q, Ctrl-C and Esc, shows the table
// within the terminal's height, and says when the tap ended.
func TestTopModel(t *testing.T) {
	table := &top.Table{}
	for _, ev := range demoEvents() {
		table.Add(ev)
	}
	m := &topModel{table: table, title: "weft viz top deployments/web -n demo", started: time.Now()}
	for _, key := range []tea.KeyPressMsg{{Code: 'q', Text: "q"}, {Code: 'c', Mod: tea.ModCtrl}, {Code: tea.KeyEscape}} {
		if _, cmd := m.Update(key); cmd == nil || cmd() != tea.Quit() {
			t.Errorf("%s does not quit", key)
		}
	}
	if _, cmd := m.Update(tea.KeyPressMsg{Code: 'x', Text: "x"}); cmd != nil {
		t.Errorf("x does something")
	}
	if _, cmd := m.Update(topTick(time.Now())); cmd == nil {
		t.Errorf("a tick does not schedule the next refresh")
	}
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 6})
	if v := m.View(); !v.AltScreen {
		t.Errorf("the live view is not on the alternate screen")
	}
	view := m.render()
	for _, want := range []string{"weft viz top deployments/web -n demo", "(q to quit)", "Source", "Success"} {
		if !strings.Contains(view, want) {
			t.Errorf("view lacks %q:\n%s", want, view)
		}
	}
	if rows := strings.Count(view, "deploy/books"); rows != 2 {
		t.Errorf("a 6-line terminal shows %d rows, want 2:\n%s", rows, view)
	}
	if _, cmd := m.Update(topEnded{err: errors.New("stream reset")}); cmd == nil || cmd() != tea.Quit() {
		t.Errorf("the end of the tap does not leave the full screen")
	}
	if !strings.Contains(m.render(), "tap ended: stream reset") {
		t.Errorf("view after the end:\n%s", m.render())
	}
}
