package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestStreamingUpload1GiB sends 1 GiB through the proxy and checks the heap
// stays bounded: neither side of the proxy buffers the body.
func TestStreamingUpload1GiB(t *testing.T) {
	const size = 1 << 30
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, n)
	}))
	h := newHarness(t, nil)
	h.to(up.addr)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	for _, chunked := range []bool{false, true} {
		body := io.LimitReader(zeros{}, size)
		req, _ := http.NewRequest("POST", "http://"+up.addr+"/upload", body)
		if !chunked {
			req.ContentLength = size
		}
		resp, err := proxiedClient(h).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != fmt.Sprint(size) {
			t.Fatalf("chunked=%v: %d %q", chunked, resp.StatusCode, b)
		}
	}
	close(stop)
	<-sampled
	growth := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("heap in use grew by %d KiB during 2 x 1 GiB uploads", growth>>10)
	if growth > 64<<20 {
		t.Fatalf("heap grew by %d MiB, want < 64 MiB", growth>>20)
	}
}

// TestSSEChunksArriveAsProduced: the upstream sends one event, then waits
// for the client to have received it before sending the next.
func TestSSEChunksArriveAsProduced(t *testing.T) {
	got := make(chan struct{})
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			fl.Flush()
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				return // the proxy buffered: the client never saw the event
			}
		}
	}))
	h := newHarness(t, nil)
	h.to(up.addr)
	resp, err := proxiedClient(h).Get("http://" + up.addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: event %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
		got <- struct{}{}
	}
}

func TestExpectContinue(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	}))
	h := newHarness(t, nil)
	h.to(up.addr)
	c, err := net.Dial("tcp", h.outbound())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /x HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue before the body, got %q %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "got hello" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

func TestWebSocketEcho(t *testing.T) {
	upg := websocket.Upgrader{}
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upg.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			mt, m, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if ws.WriteMessage(mt, m) != nil {
				return
			}
		}
	}))
	h := newHarness(t, nil)
	h.to(up.addr)
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "tcp", h.outbound())
	}, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+up.addr+"/echo", nil)
	if err != nil {
		t.Fatalf("dial: %v (resp %v)", err, resp)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range 20 {
		msg := fmt.Sprintf("message %d %s", i, strings.Repeat("x", i*100))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := ws.ReadMessage()
		if err != nil || string(got) != msg {
			t.Fatalf("echo %d: %q %v", i, got, err)
		}
	}
	if !strings.Contains(scrape(t, h), `status_code="101",classification="success"`) {
		t.Error("upgrade not recorded as 101")
	}
}
