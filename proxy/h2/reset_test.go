package h2

import (
	"bytes"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawClient speaks HTTP/2 frames directly, to misbehave.
type rawClient struct {
	conn     net.Conn
	wmu      sync.Mutex // guards w and enc: the reader acks SETTINGS
	w        *http2.Framer
	enc      *hpack.Encoder
	buf      bytes.Buffer
	goaway   chan *http2.GoAwayFrame         // receives the GOAWAY, if any
	settings chan map[http2.SettingID]uint32 // receives the server's first SETTINGS
	done     chan struct{}                   // closed when the read side ended
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{conn: conn, w: http2.NewFramer(conn, nil), goaway: make(chan *http2.GoAwayFrame, 1), settings: make(chan map[http2.SettingID]uint32, 1), done: make(chan struct{})}
	c.enc = hpack.NewEncoder(&c.buf)
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := c.w.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	r := http2.NewFramer(nil, conn)
	go func() {
		defer close(c.done)
		for {
			f, err := r.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				ga := *f // the framer reuses f
				select {
				case c.goaway <- &ga:
				default:
				}
			case *http2.SettingsFrame:
				if !f.IsAck() {
					m := map[http2.SettingID]uint32{}
					_ = f.ForeachSetting(func(s http2.Setting) error { m[s.ID] = s.Val; return nil })
					select {
					case c.settings <- m:
					default:
					}
					_ = c.write(func(w *http2.Framer) error { return w.WriteSettingsAck() })
				}
			}
		}
	}()
	return c
}

// write runs fn with the frame writer locked.
func (c *rawClient) write(fn func(*http2.Framer) error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return fn(c.w)
}

func (c *rawClient) rst(sid uint32) error {
	return c.write(func(w *http2.Framer) error { return w.WriteRSTStream(sid, http2.ErrCodeCancel) })
}

// request opens stream sid with a GET.
func (c *rawClient) request(sid uint32) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.buf.Reset()
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "svc:80"}} {
		_ = c.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	return c.w.WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: c.buf.Bytes(), EndHeaders: true, EndStream: true})
}

func TestRapidResetFloodIsCut(t *testing.T) {
	const maxResets = 100
	var reached atomic.Int64
	ep, _ := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		select { // upstream work that lasts until cancelled
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	p, addr := startProxy(t, Config{Router: staticRouter{ep}, MaxResets: maxResets})
	c := dialRaw(t, addr)

	const attempts = 20000
	sent := 0
	deadline := time.Now().Add(10 * time.Second)
	for ; sent < attempts && time.Now().Before(deadline); sent++ {
		sid := uint32(2*sent + 1)
		if c.request(sid) != nil || c.rst(sid) != nil {
			break // the proxy cut the connection
		}
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("connection still open after %d HEADERS+RST_STREAM pairs", sent)
	}
	select {
	case ga := <-c.goaway:
		if ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
			t.Fatalf("GOAWAY code %v, want ENHANCE_YOUR_CALM", ga.ErrCode)
		}
	default:
		t.Fatal("connection closed without GOAWAY")
	}
	if sent >= attempts {
		t.Fatalf("all %d pairs were written; the flood was not cut", sent)
	}
	// Every request the proxy accepted could reach the backend at most once;
	// the guard stops reading after maxResets+1 resets.
	if n := reached.Load(); n > maxResets+1 {
		t.Fatalf("%d requests reached the backend during a flood cut at %d resets", n, maxResets)
	}
	if s := p.Stats(); s.ResetFloods != 1 {
		t.Fatalf("stats %+v: want one reset flood", s)
	}
	t.Logf("flood: %d pairs written before the cut, %d reached the backend", sent, reached.Load())
}

func TestResetsUnderBudgetKeepConnection(t *testing.T) {
	ep, _ := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	p, addr := startProxy(t, Config{Router: staticRouter{ep}, MaxResets: 100})
	c := dialRaw(t, addr)
	for i := 0; i < 50; i++ {
		sid := uint32(2*i + 1)
		if err := c.request(sid); err != nil {
			t.Fatal(err)
		}
		if err := c.rst(sid); err != nil {
			t.Fatal(err)
		}
	}
	// A PING round trip proves the connection is still served.
	if err := c.write(func(w *http2.Framer) error { return w.WritePing(false, [8]byte{1}) }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Requests < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-c.done:
		t.Fatal("connection closed under the reset budget")
	case ga := <-c.goaway:
		t.Fatalf("GOAWAY %v under the reset budget", ga)
	case <-time.After(200 * time.Millisecond):
	}
	if s := p.Stats(); s.ResetFloods != 0 {
		t.Fatalf("stats %+v", s)
	}
}
