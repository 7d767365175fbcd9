package testapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ServeTCPEcho accepts connections on addr and echoes every byte back until the peer closes its
// side, until ctx is done.
func ServeTCPEcho(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	slog.Info("serving tcp echo", "addr", ln.Addr().String())
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept %s: %w", addr, err)
		}
		wg.Go(func() {
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			_, _ = io.Copy(c, c)
		})
	}
}

// TCP connects to addr, writes msg, closes its write side and writes what the peer sends back to
// w, all within timeout (zero means 10s).
func TCP(ctx context.Context, addr, msg string, timeout time.Duration, w io.Writer) error {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return fmt.Errorf("write %s: %w", addr, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err != nil {
			return fmt.Errorf("close write %s: %w", addr, err)
		}
	}
	if _, err := io.Copy(w, c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", addr, err)
	}
	return nil
}
