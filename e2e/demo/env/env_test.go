package env

import (
	"testing"
	"time"
)

func TestReaders(t *testing.T) {
	t.Setenv("WDM_S", "x")
	t.Setenv("WDM_F", "0.25")
	t.Setenv("WDM_D", "150ms")
	t.Setenv("WDM_BAD", "nope")
	if got := String("WDM_S", "d"); got != "x" {
		t.Errorf("String = %q, want x", got)
	}
	if got := String("WDM_UNSET", "d"); got != "d" {
		t.Errorf("String default = %q, want d", got)
	}
	if f, err := Float("WDM_F", 1); err != nil || f != 0.25 {
		t.Errorf("Float = %v, %v; want 0.25", f, err)
	}
	if f, err := Float("WDM_UNSET", 0.5); err != nil || f != 0.5 {
		t.Errorf("Float default = %v, %v; want 0.5", f, err)
	}
	if _, err := Float("WDM_BAD", 0); err == nil {
		t.Error("Float of malformed value: want error")
	}
	if d, err := Duration("WDM_D", time.Second); err != nil || d != 150*time.Millisecond {
		t.Errorf("Duration = %v, %v; want 150ms", d, err)
	}
	if _, err := Duration("WDM_BAD", 0); err == nil {
		t.Error("Duration of malformed value: want error")
	}
}
