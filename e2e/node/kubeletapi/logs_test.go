package kubeletapi

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseLogOptions(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	o, err := parseLogOptions(url.Values{"follow": {"true"}, "tailLines": {"5"}, "sinceSeconds": {"60"}, "limitBytes": {"100"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !o.follow || o.previous || o.tailLines != 5 || o.limitBytes != 100 || !o.since.Equal(now.Add(-time.Minute)) {
		t.Errorf("options = %+v", o)
	}
	if o, _ := parseLogOptions(url.Values{}, now); o.tailLines != -1 || o.follow || !o.since.IsZero() {
		t.Errorf("defaults = %+v, want all lines, no follow, no since", o)
	}
	for _, q := range []url.Values{
		{"follow": {"yes-please"}},
		{"tailLines": {"-3"}},
		{"sinceSeconds": {"5"}, "sinceTime": {"2026-12-07T11:00:00Z"}},
		{"sinceTime": {"yesterday"}},
	} {
		if _, err := parseLogOptions(q, now); err == nil {
			t.Errorf("parseLogOptions(%v) accepted", q)
		}
	}
}

// criLog renders lines as CRI records one second apart from base; a body ending in "\\" is
// written as a partial record (without the backslash).
func criLog(base time.Time, lines ...string) string {
	var b strings.Builder
	for i, l := range lines {
		tag := "F"
		if body, ok := strings.CutSuffix(l, `\`); ok {
			tag, l = "P", body
		}
		b.WriteString(base.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano) + " stdout " + tag + " " + l + "\n")
	}
	return b.String()
}

func records(t *testing.T, log string) []record {
	t.Helper()
	var out []record
	for _, l := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		r, ok := parseRecord([]byte(l))
		if !ok {
			t.Fatalf("parseRecord(%q) failed", l)
		}
		out = append(out, r)
	}
	return out
}

func renderAll(o logOptions, recs []record) string {
	var b []byte
	for _, r := range o.selectRecords(recs) {
		b = o.render(b, r)
	}
	return string(b)
}

func TestSelectAndRender(t *testing.T) {
	base := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	recs := records(t, criLog(base, "one", "two-a\\", "two-b", "three", ""))
	if _, ok := parseRecord([]byte("not a record")); ok {
		t.Error("parseRecord accepted a line without a time")
	}
	for _, tt := range []struct {
		name string
		o    logOptions
		want string
	}{
		{"all", logOptions{tailLines: -1}, "one\ntwo-atwo-b\nthree\n\n"},
		{"tail 0", logOptions{tailLines: 0}, ""},
		{"tail 3 counts full lines", logOptions{tailLines: 3}, "two-atwo-b\nthree\n\n"},
		{"since", logOptions{tailLines: -1, since: base.Add(3 * time.Second)}, "three\n\n"},
		{"timestamps", logOptions{tailLines: 1, timestamps: true}, base.Add(4*time.Second).Format(time.RFC3339Nano) + " \n"},
	} {
		if got := renderAll(tt.o, recs); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestWriteLogFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	base := time.Now().UTC()
	if err := os.WriteFile(path, []byte(criLog(base, "old-1", "old-2")), 0o600); err != nil {
		t.Fatal(err)
	}
	var running atomic.Bool
	running.Store(true)
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- writeLog(context.Background(), &out, logSource{path: path, running: running.Load}, logOptions{follow: true, tailLines: 1})
	}()
	waitUntil(t, "the tail line", func() bool { return out.String() == "old-2\n" })
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A record written in two pieces is sent once it is complete.
	rec := criLog(base.Add(time.Minute), "new")
	if _, err := f.WriteString(rec[:10]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * followPoll)
	if got := out.String(); got != "old-2\n" {
		t.Fatalf("after half a record: %q", got)
	}
	if _, err := f.WriteString(rec[10:]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new line", func() bool { return out.String() == "old-2\nnew\n" })
	running.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end after the container stopped")
	}
}

func TestWriteLogLimitBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	if err := os.WriteFile(path, []byte(criLog(time.Now(), "abcdef", "ghij")), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := writeLog(context.Background(), &out, logSource{path: path}, logOptions{tailLines: -1, limitBytes: 9}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "abcdef\ngh" {
		t.Errorf("limitBytes 9 = %q", out.String())
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
