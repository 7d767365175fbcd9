package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCRILogRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, []byte("earlier instance\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sink, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(PreviousLogPath(path)); err != nil || string(b) != "earlier instance\n" {
		t.Fatalf("previous log = %q, %v: want the earlier instance's log", b, err)
	}
	out, err := sink.pipe("stdout")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", maxLogLine+10)
	if _, err := out.WriteString("hello\n" + long + "\nno newline"); err != nil {
		t.Fatal(err)
	}
	out.Close()
	sink.close()

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	want := []struct{ tag, body string }{{"F", "hello"}, {"P", long[:maxLogLine]}, {"F", long[maxLogLine:]}, {"P", "no newline"}}
	if len(lines) != len(want) {
		t.Fatalf("%d records, want %d:\n%s", len(lines), len(want), b)
	}
	for i, l := range lines {
		f := strings.SplitN(l, " ", 4)
		if len(f) != 4 {
			t.Fatalf("record %d %q: want TIME STREAM TAG BODY", i, l)
		}
		if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
			t.Errorf("record %d: time %q: %v", i, f[0], err)
		}
		if f[1] != "stdout" || f[2] != want[i].tag || f[3] != want[i].body {
			t.Errorf("record %d = %s %s %.20q, want stdout %s %.20q", i, f[1], f[2], f[3], want[i].tag, want[i].body)
		}
	}
}
