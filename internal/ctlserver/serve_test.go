package ctlserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fakeAPI accepts connections until stopped and records how it was stopped.
type fakeAPI struct {
	lis      net.Listener
	stopped  chan struct{}
	drainCtx chan bool // whether the drain context was already done
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{stopped: make(chan struct{}), drainCtx: make(chan bool, 1)}
}

func (f *fakeAPI) Serve(lis net.Listener) error {
	f.lis = lis
	<-f.stopped
	return ErrStopped
}

func (f *fakeAPI) Stop(ctx context.Context) {
	f.drainCtx <- ctx.Err() != nil
	close(f.stopped)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestServeEnds(t *testing.T) {
	taskErr := errors.New("source broke")
	cases := []struct {
		name    string
		drain   time.Duration
		tasks   []Task
		trigger func(cancel context.CancelFunc, admin net.Listener)
		wantErr string // "" means nil
		drained bool   // drain context still open when Stop was called
		early   bool   // ends by itself, maybe before the admin answers
	}{
		{name: "cancel drains", drain: time.Minute, trigger: func(c context.CancelFunc, _ net.Listener) { c() }, drained: true},
		{name: "cancel without drain", trigger: func(c context.CancelFunc, _ net.Listener) { c() }},
		{name: "admin listener fails", drain: time.Minute, trigger: func(_ context.CancelFunc, a net.Listener) { a.Close() },
			wantErr: "demo: serve admin", drained: true},
		{name: "task fails", drain: time.Minute, tasks: []Task{func(context.Context) error { return taskErr }},
			trigger: func(context.CancelFunc, net.Listener) {}, wantErr: "source broke", drained: true, early: true},
		{name: "task ends with ctx", tasks: []Task{func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
			trigger: func(c context.CancelFunc, _ net.Listener) { c() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI()
			lis, admin := listen(t), listen(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- Serve(ctx, Config{Name: "demo", Drain: tc.drain}, api, lis, admin, tc.tasks...)
			}()
			if !tc.early {
				waitHTTP(t, "http://"+admin.Addr().String()+"/live", http.StatusOK)
			}
			tc.trigger(cancel, admin)
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Serve did not return")
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Serve = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Serve = %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.wantErr == "source broke" && !errors.Is(err, taskErr) {
				t.Errorf("Serve = %v does not wrap the task's error", err)
			}
			select {
			case expired := <-api.drainCtx:
				if expired == tc.drained {
					t.Errorf("drain context done at Stop = %v, want %v", expired, !tc.drained)
				}
			default:
				t.Fatal("the API was not stopped")
			}
			if _, err := http.Get("http://" + admin.Addr().String() + "/live"); err == nil {
				t.Error("admin still serving after Serve returned")
			}
		})
	}
}

func TestRunReportsListenErrors(t *testing.T) {
	busy := listen(t)
	defer busy.Close()
	err := Run(context.Background(), Config{Name: "demo", Addr: busy.Addr().String(), AdminAddr: "127.0.0.1:0"}, newFakeAPI())
	if err == nil || !strings.Contains(err.Error(), "demo: listen "+busy.Addr().String()) {
		t.Fatalf("Run = %v, want a listen error naming the component and address", err)
	}
	err = Run(context.Background(), Config{Name: "demo", Addr: "127.0.0.1:0", AdminAddr: busy.Addr().String()}, newFakeAPI())
	if err == nil || !strings.Contains(err.Error(), "listen admin") {
		t.Fatalf("Run = %v, want an admin listen error", err)
	}
}

func waitHTTP(t *testing.T, url string, code int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if r, err := http.Get(url); err == nil {
			r.Body.Close()
			if r.StatusCode == code {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never answered %d", url, code)
}

func TestAdminEndpoints(t *testing.T) {
	notReady := errors.New("informers syncing")
	var gotAddr string
	cfg := Config{
		Name:  "demo",
		Ready: func() error { return notReady },
		SelfTests: []SelfTest{
			{Name: "good", Run: func(_ context.Context, addr string) (string, error) { gotAddr = addr; return "detail", nil }},
			{Name: "bad", Run: func(context.Context, string) (string, error) { return "", errors.New("no endpoints") }},
		},
	}
	h := AdminHandler(cfg, &net.TCPAddr{IP: net.IPv4zero, Port: 8086})
	srv := &http.Server{Handler: h}
	l := listen(t)
	go srv.Serve(l)
	defer srv.Close()
	base := "http://" + l.Addr().String()
	cases := []struct {
		path string
		code int
		body string
	}{
		{"/live", 200, "live"},
		{"/ready", 503, "not ready: informers syncing"},
		{"/metrics", 200, ""},
		{"/selftest", 200, `"component":"demo","ok":false`},
		{"/nothing", 404, ""},
	}
	for _, tc := range cases {
		r, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != tc.code || !strings.Contains(string(b), tc.body) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, r.StatusCode, b, tc.code, tc.body)
		}
	}
	r, err := http.Get(base + "/selftest")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var rep Report
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	good, ok1 := rep.Find("good")
	bad, ok2 := rep.Find("bad")
	if !ok1 || !ok2 || !good.OK || good.Detail != "detail" || bad.OK || bad.Error != "no endpoints" || len(rep.Results) != 2 {
		t.Errorf("selftest report = %+v", rep)
	}
	if gotAddr != "127.0.0.1:8086" {
		t.Errorf("self-test dialled %q, want the loopback address of the API", gotAddr)
	}
}

func TestLoopback(t *testing.T) {
	cases := []struct {
		in   net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4zero, Port: 80}, "127.0.0.1:80"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 80}, "[::1]:80"},
		{&net.TCPAddr{Port: 80}, "127.0.0.1:80"},
		{&net.TCPAddr{IP: net.ParseIP("198.18.0.5"), Port: 80}, "198.18.0.5:80"},
		{nil, ""},
	}
	for _, tc := range cases {
		if got := Loopback(tc.in); got != tc.want {
			t.Errorf("Loopback(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
