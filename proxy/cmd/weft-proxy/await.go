package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/weftmesh/weft/proxy/admin"
)

// runAwait implements `weft-proxy await [--timeout D]`: it waits until the
// proxy in the same pod reports ready on its admin port (from
// WEFT_PROXY_ADMIN_LISTEN_ADDR, default 4191).
func runAwait(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("weft-proxy await", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the proxy to be ready")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	port := "4191"
	if addr := os.Getenv("WEFT_PROXY_ADMIN_LISTEN_ADDR"); addr != "" {
		if _, p, err := net.SplitHostPort(addr); err == nil {
			port = p
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := admin.AwaitReady(ctx, "http://127.0.0.1:"+port+"/ready", 200*time.Millisecond); err != nil {
		fmt.Fprintln(stderr, "weft-proxy await:", err)
		return 1
	}
	return 0
}
