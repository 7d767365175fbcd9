package app

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/config"
)

// blockingBackend serves /block by blocking until its request's context is
// done (then it reports on cancelled), /hold by sending the response head
// and a first line, then blocking the same way, /sse by sending an event every 20 ms until
// then, and anything else with "ok".
func blockingBackend(t *testing.T) (addr string, started, cancelled chan string) {
	t.Helper()
	started, cancelled = make(chan string, 16), make(chan string, 16)
	ln := listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/block", "/block/untimed":
			started <- r.URL.Path
			select {
			case <-r.Context().Done():
				cancelled <- r.URL.Path
			case <-time.After(30 * time.Second):
			}
		case "/hold": // a long poll: a first line at once, then nothing until cancelled
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "waiting\n")
			w.(http.Flusher).Flush()
			started <- r.URL.Path
			select {
			case <-r.Context().Done():
				cancelled <- r.URL.Path
			case <-time.After(30 * time.Second):
			}
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			started <- r.URL.Path
			for i := 0; i < 1500; i++ { // 30 s at most
				if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
					break
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					cancelled <- r.URL.Path
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			cancelled <- r.URL.Path + " (ended by a write error)"
		default:
			io.WriteString(w, "ok")
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), started, cancelled
}

func waitOn(t *testing.T, ch chan string, what string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing within 10s", what)
		return ""
	}
}

// TestClientDisconnectCancelsUpstream: a client closes its connection while
// the backend is still working on its request; the proxy closes its
// upstream connection, so the backend's request context is cancelled, and
// the exchange is counted as canceled. Keep-alive requests around it work.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	backend, started, cancelled := blockingBackend(t)
	h := newHarness(t, nil)
	h.to(backend)

	// Keep-alive before and after, on one client connection.
	c := h1Client()
	for i := 0; i < 3; i++ {
		if code, _, body := get(t, c, h.outbound(), "http", "/"); code != 200 || body != "ok" {
			t.Fatalf("keep-alive request %d: %d %q", i, code, body)
		}
	}

	for i := 0; i < 3; i++ {
		conn, err := net.Dial("tcp", h.outbound())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "GET /block HTTP/1.1\r\nHost: books\r\n\r\n")
		waitOn(t, started, "backend request")
		conn.Close()
		if got := waitOn(t, cancelled, "backend cancellation"); got != "/block" {
			t.Fatalf("cancelled %q", got)
		}
	}
	for i := 0; i < 3; i++ {
		if code, _, body := get(t, c, h.outbound(), "http", "/"); code != 200 || body != "ok" {
			t.Fatalf("keep-alive request after cancellations %d: %d %q", i, code, body)
		}
	}
	var m string
	for try := 0; try < 50; try++ { // the record is written when the handler returns
		m = scrape(t, h)
		if strings.Contains(m, `kind="canceled"} 3`) && strings.Contains(m, `status_code="499"`) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("canceled not counted:\n%s", grepLines(m, "errors_total"))
}

// TestClientDisconnectStopsStream: an SSE stream stops at the backend (its
// request context is cancelled) when the client goes away.
func TestClientDisconnectStopsStream(t *testing.T) {
	backend, started, cancelled := blockingBackend(t)
	h := newHarness(t, nil)
	h.to(backend)
	conn, err := net.Dial("tcp", h.outbound())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /sse HTTP/1.1\r\nHost: books\r\n\r\n")
	waitOn(t, started, "backend stream")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	events := 0
	for events < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d events: %v", events, err)
		}
		if strings.Contains(line, "data: ") {
			events++
		}
	}
	conn.Close()
	if got := waitOn(t, cancelled, "backend stream end"); got != "/sse" && !strings.HasPrefix(got, "/sse") {
		t.Fatalf("stream ended as %q", got)
	}
}

// TestClientDisconnectStopsLongPoll: the response head went through, the
// body is still to come (the proxy waits on the upstream, with nothing to
// write to the client): the client leaving still cancels the upstream.
func TestClientDisconnectStopsLongPoll(t *testing.T) {
	backend, started, cancelled := blockingBackend(t)
	h := newHarness(t, nil)
	h.to(backend)
	conn, err := net.Dial("tcp", h.outbound())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /hold HTTP/1.1\r\nHost: books\r\n\r\n")
	waitOn(t, started, "backend long poll")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("status line %q: %v", status, err)
	}
	conn.Close()
	if got := waitOn(t, cancelled, "backend long-poll cancellation"); got != "/hold" {
		t.Fatalf("cancelled %q", got)
	}
}

// TestRouteTimeoutCancelsThroughTwoProxies: app → proxy A (outbound, a
// 100 ms route timeout from the destination service) → proxy B (inbound)
// → backend. A answers 504 and closes its connection to B; B closes its
// connection to the backend, whose request context is cancelled.
func TestRouteTimeoutCancelsThroughTwoProxies(t *testing.T) {
	backend, started, cancelled := blockingBackend(t)
	// B's inbound listener is the endpoint the destination service names.
	l := listen(t)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b := newHarness(t, func(c *config.Config) { c.InboundAddrs = []string{"127.0.0.1:" + strconv.Itoa(port)} })
	b.to(backend)

	cp := newControlPlane(t, port, "127.0.0.1")
	cp.profile(t, map[string]any{"routes": []any{
		map[string]any{"name": "GET /block", "condition": map[string]any{"method": "GET", "pathRegex": "/block"}, "timeout": "100ms"},
	}})
	a := meshClient(t, cp, port, nil)
	c := h1Client()
	if code, _, _ := get(t, c, a.outbound(), "http", "/"); code != 200 {
		t.Fatalf("warm-up: %d", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, perr, _ := get(t, c, a.outbound(), "http", "/block")
		if code == 504 && perr == "timeout" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("route timeout never applied: %d %q", code, perr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitOn(t, started, "backend request")
	if got := waitOn(t, cancelled, "backend cancellation through two proxies"); got != "/block" {
		t.Fatalf("cancelled %q", got)
	}
	if code, _, body := get(t, c, a.outbound(), "http", "/"); code != 200 || body != "ok" {
		t.Fatalf("after: %d %q", code, body)
	}

	// A client that leaves a balanced request (no route timeout) cancels it
	// through both proxies as well.
	conn, err := net.Dial("tcp", a.outbound())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /block/untimed HTTP/1.1\r\nHost: "+booksHost+":80\r\n\r\n")
	waitOn(t, started, "backend request (untimed)")
	conn.Close()
	if got := waitOn(t, cancelled, "backend cancellation of a balanced request"); got != "/block/untimed" {
		t.Fatalf("cancelled %q", got)
	}
}

// TestClientDisconnectCancelsOnlyItsRequest: of several concurrent requests
// on pooled upstream connections, only the one whose client left is
// cancelled; the others complete normally. Several rounds, so upstream
// connections are reused from the pool (the bind of a pooled connection)
// as well as dialed.
func TestClientDisconnectCancelsOnlyItsRequest(t *testing.T) {
	type outcome struct {
		id        string
		cancelled bool
	}
	started, outcomes := make(chan string, 64), make(chan outcome, 64)
	release := make(chan struct{})
	ln := listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		started <- id
		select {
		case <-r.Context().Done():
			outcomes <- outcome{id, true}
		case <-release:
			outcomes <- outcome{id, false}
			io.WriteString(w, "done "+id)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	h := newHarness(t, nil)
	h.to(ln.Addr().String())

	const n = 6
	for round := 0; round < 4; round++ {
		release = make(chan struct{})
		conns := make([]net.Conn, n)
		for i := range conns {
			c, err := net.Dial("tcp", h.outbound())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /wait?id=%d HTTP/1.1\r\nHost: books\r\n\r\n", i)
			conns[i] = c
		}
		for range n {
			waitOn(t, started, "backend request")
		}
		victim := round % n
		conns[victim].Close()
		select {
		case o := <-outcomes:
			if !o.cancelled || o.id != strconv.Itoa(victim) {
				t.Fatalf("round %d: first outcome %+v, want request %d cancelled", round, o, victim)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: request %d not cancelled", round, victim)
		}
		close(release)
		for i, c := range conns {
			if i == victim {
				continue
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("round %d request %d: %v", round, i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "done "+strconv.Itoa(i) {
				t.Fatalf("round %d request %d: %d %q", round, i, resp.StatusCode, b)
			}
			c.Close()
		}
		for range n - 1 {
			if o := <-outcomes; o.cancelled {
				t.Fatalf("round %d: request %s cancelled too", round, o.id)
			}
		}
	}
}
