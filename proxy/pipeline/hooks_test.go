package pipeline

import (
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
)

// fakeTap records what the pipeline reports.
type fakeTap struct {
	active atomic.Bool
	take   bool
	log    []string
}

func (f *fakeTap) Active() bool { return f.active.Load() }

func (f *fakeTap) Begin(r *TapRequest) TapExchange {
	f.log = append(f.log, "req "+r.Rec.Method+" "+r.Authority+r.Rec.Path+" from "+r.Source)
	if !f.take {
		return nil
	}
	return f
}

func (f *fakeTap) Response(status int, _ Headers, ttfb time.Duration) {
	f.log = append(f.log, "rsp "+strconv.Itoa(status))
	if ttfb <= 0 {
		f.log = append(f.log, "bad ttfb")
	}
}

func (f *fakeTap) End(e *TapEnd) {
	s := "end grpc=" + strconv.Itoa(e.GRPCStatus) + " bytes=" + strconv.Itoa(int(e.Bytes))
	if e.Failed {
		s += " kind=" + e.Kind.String()
	}
	if e.Reset {
		s += " reset"
	}
	f.log = append(f.log, s)
}

func TestTapping(t *testing.T) {
	failed := &record.HTTP{Method: "GET", Path: "/x", GRPCStatus: -1, Err: errors.New("refused"), ErrKind: proxyerr.Connect}
	ok := &record.HTTP{Method: "GET", Path: "/x", GRPCStatus: 0}
	for _, tc := range []struct {
		name   string
		hook   bool // a Tap hook is configured
		active bool
		take   bool
		rec    *record.HTTP
		steps  func(*Tapping, *record.HTTP)
		want   string
	}{
		{"no hook", false, false, false, ok, func(tp *Tapping, r *record.HTTP) { tp.Response(200, nil); tp.End(r, 1, false) }, ""},
		{"hook, no tap running", true, false, true, ok, func(tp *Tapping, r *record.HTTP) { tp.Response(200, nil); tp.End(r, 1, false) }, ""},
		{"not taken", true, true, false, ok, func(tp *Tapping, r *record.HTTP) { tp.Response(200, nil); tp.End(r, 1, false) },
			"req GET web:80/x from 198.18.0.1:5000"},
		{"req rsp end", true, true, true, ok, func(tp *Tapping, r *record.HTTP) { tp.Response(200, nil); tp.End(r, 12, false) },
			"req GET web:80/x from 198.18.0.1:5000|rsp 200|end grpc=0 bytes=12"},
		{"second response and end ignored", true, true, true, ok, func(tp *Tapping, r *record.HTTP) {
			tp.Response(200, nil)
			tp.Response(500, nil)
			tp.End(r, 3, false)
			tp.End(r, 4, false)
			tp.Response(200, nil)
		}, "req GET web:80/x from 198.18.0.1:5000|rsp 200|end grpc=0 bytes=3"},
		{"proxy error", true, true, true, failed, func(tp *Tapping, r *record.HTTP) { tp.Response(502, nil); tp.End(r, 15, false) },
			"req GET web:80/x from 198.18.0.1:5000|rsp 502|end grpc=-1 bytes=15 kind=connect_failed"},
		{"reset before the response", true, true, true, ok, func(tp *Tapping, r *record.HTTP) { tp.End(r, 0, true) },
			"req GET web:80/x from 198.18.0.1:5000|end grpc=0 bytes=0 reset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTap{take: tc.take}
			f.active.Store(tc.active)
			var p Pipeline
			if tc.hook {
				p.Tap = f
			}
			var tp Tapping
			start := time.Now().Add(-time.Millisecond)
			if p.TapOn() {
				p.TapBegin(&tp, tc.rec, "http", "web:80", "198.18.0.1:5000", nil, start)
			}
			tc.steps(&tp, tc.rec)
			if got := strings.Join(f.log, "|"); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
			if tp.Tapped() {
				t.Fatal("still tapped after End")
			}
		})
	}
}

// BenchmarkTapOnIdle is what every request pays with a Tap hook configured
// and no tap running: a nil check, an interface call and one atomic load.
func BenchmarkTapOnIdle(b *testing.B) {
	p := Pipeline{Tap: &fakeTap{}}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if p.TapOn() {
			n++
		}
	}
	if n != 0 {
		b.Fatal("on")
	}
}

// BenchmarkTapOnOff is the same without a hook: one nil check.
func BenchmarkTapOnOff(b *testing.B) {
	var p Pipeline
	b.ReportAllocs()
	for b.Loop() {
		if p.TapOn() {
			b.Fatal("on")
		}
	}
}
