package http1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
	"github.com/weftmesh/weft/proxy/tcp"
)

// maxUpgradeHead bounds the upstream's answer to an upgrade request.
const maxUpgradeHead = 16 << 10

var errBadUpgradeHead = errors.New("malformed response to an upgrade request")

// upgrade tunnels an Upgrade request (WebSocket, h2c upgrade, ...): the
// request head goes upstream on a dedicated connection, the upstream's
// answer is relayed verbatim, and from then on bytes are copied both ways
// until either side closes. Pooled connections are never used for it.
func (p *Proxy) upgrade(ctx *fasthttp.RequestCtx, c *conn, ep target.Endpoint, start time.Time) {
	rec := &c.rec
	if cl := ctx.Request.Header.ContentLength(); cl > 0 || cl == -1 {
		p.fail(ctx, rec, proxyerr.New(proxyerr.BadRequest, errors.New("upgrade request with a body")), start)
		return
	}
	up, err := p.cfg.Dialer.Dial(context.Background(), ep)
	if err != nil {
		p.fail(ctx, rec, err, start)
		return
	}
	stripHopByHop(&ctx.Request.Header, &c.tmp, true)
	if _, err := up.Write(ctx.Request.Header.Header()); err != nil {
		up.Close()
		p.fail(ctx, rec, proxyerr.New(proxyerr.Connect, err), start)
		return
	}
	br := bufio.NewReaderSize(up, 4096)
	if p.cfg.ResponseTimeout > 0 {
		up.SetReadDeadline(time.Now().Add(p.cfg.ResponseTimeout))
	}
	head, status, err := readHead(br)
	up.SetReadDeadline(time.Time{})
	if err != nil {
		up.Close()
		p.fail(ctx, rec, classify(err), start)
		return
	}
	rec.StatusCode = status
	rec.Latency = time.Since(start)
	p.observe(rec)

	ctx.HijackSetNoResponse(true)
	c.tunnel = make(chan struct{})
	ctx.Hijack(func(client net.Conn) {
		defer close(c.tunnel)
		if _, err := client.Write(head); err != nil {
			up.Close()
			return
		}
		upstream := net.Conn(up)
		if br.Buffered() > 0 {
			upstream = &bufConn{Conn: up, r: br}
		}
		tcp.Forward(client, upstream, nil)
	})
}

// readHead reads a response head (through the blank line) and its status.
func readHead(br *bufio.Reader) (head []byte, status int, err error) {
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) && len(head) < maxUpgradeHead {
				continue
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, 0, err
		}
		if len(head) > maxUpgradeHead {
			return nil, 0, errBadUpgradeHead
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
	}
	// "HTTP/1.1 101 Switching Protocols"
	if len(head) < 12 || !bytes.HasPrefix(head, []byte("HTTP/1.")) {
		return nil, 0, errBadUpgradeHead
	}
	status, err = strconv.Atoi(string(head[9:12]))
	if err != nil {
		return nil, 0, errBadUpgradeHead
	}
	return head, status, nil
}

// bufConn reads what a bufio.Reader already buffered before the conn.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWrite half-closes the underlying connection.
func (b *bufConn) CloseWrite() error {
	if cw, ok := b.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return b.Conn.Close()
}
