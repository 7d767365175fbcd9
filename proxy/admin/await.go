package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// AwaitReady polls url (a proxy's /ready) until it answers 200, ctx ends, or
// every poll keeps failing; the error carries the last answer. It backs
// `weft-proxy await`, the postStart hook that holds an application container
// until its proxy is ready when the proxy cannot run as a native sidecar.
func AwaitReady(ctx context.Context, url string, every time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("await %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else if ctx.Err() == nil || last == "" {
			// A poll cut short by the deadline must not hide the proxy's
			// last real answer, which is what the error is for.
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("proxy not ready at %s (last: %s): %w", url, last, ctx.Err())
		case <-time.After(every):
		}
	}
}
