package testapp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// GetConfig configures Get.
type GetConfig struct {
	URL string
	// Attempts is how many times to try; zero means 30.
	Attempts int
	// Interval is the wait between attempts; zero means 1s.
	Interval time.Duration
	// Timeout bounds each attempt; zero means 5s.
	Timeout time.Duration
}

// Get GETs cfg.URL until it answers 2xx or the attempts are used up, and writes the successful
// body to w. Failed attempts are logged to stderr; the error names the last failure.
func Get(ctx context.Context, cfg GetConfig, w io.Writer) error {
	if cfg.Attempts <= 0 {
		cfg.Attempts = 30
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	client := &http.Client{Timeout: cfg.Timeout}
	var last error
	for i := 1; i <= cfg.Attempts; i++ {
		body, err := getOnce(ctx, client, cfg.URL)
		if err == nil {
			_, err = w.Write(body)
			return err
		}
		last = err
		slog.Warn("get failed", "url", cfg.URL, "attempt", i, "of", cfg.Attempts, "err", err)
		if i == cfg.Attempts {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("get %s: %w (last: %v)", cfg.URL, ctx.Err(), last)
		case <-time.After(cfg.Interval):
		}
	}
	return fmt.Errorf("get %s: %d attempts failed, last: %w", cfg.URL, cfg.Attempts, last)
}

func getOnce(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return body, nil
}
