package testapp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftmesh/weft/e2e/demo/serve"
)

// LifecycleConfig configures RecordLifecycle.
type LifecycleConfig struct {
	// File receives the lines (appended); "" or "-" means only Out.
	File string
	// Name identifies the container in the lines. Required.
	Name string
	// Listen, if set, serves /healthz there while running (for startup/readiness probes).
	Listen string
	// ReadyAfter keeps Listen's /healthz answering 503 for this long after the start, then
	// records "ready <name> <unixnano>" and answers 200; zero means ready at once (no line).
	ReadyAfter time.Duration
	// For ends the run by itself after this long; zero means run until ctx is done (SIGTERM).
	For time.Duration
}

// RecordLifecycle writes "start <name> <unixnano>" when it starts, "ready <name> <unixnano>" when
// its probe endpoint turns ready after ReadyAfter, and "stop <name> <unixnano>" when ctx is done
// (SIGTERM) or For has passed, to out and to File. The timestamps let a test order the containers
// of a pod.
func RecordLifecycle(ctx context.Context, cfg LifecycleConfig, out io.Writer) error {
	if cfg.Name == "" {
		return fmt.Errorf("record-lifecycle: a name is required")
	}
	var mu sync.Mutex
	record := func(event string) error {
		mu.Lock()
		defer mu.Unlock()
		line := fmt.Sprintf("%s %s %d\n", event, cfg.Name, time.Now().UnixNano())
		if _, err := io.WriteString(out, line); err != nil {
			return fmt.Errorf("record %s: %w", event, err)
		}
		if cfg.File == "" || cfg.File == "-" {
			return nil
		}
		f, err := os.OpenFile(cfg.File, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("record %s: %w", event, err)
		}
		if _, err := io.WriteString(f, line); err != nil {
			f.Close()
			return fmt.Errorf("record %s to %s: %w", event, cfg.File, err)
		}
		return f.Close()
	}
	if err := record("start"); err != nil {
		return err
	}
	if cfg.For > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.For)
		defer cancel()
	}
	srvErr := make(chan error, 1)
	if cfg.Listen != "" {
		var ready atomic.Bool
		ready.Store(cfg.ReadyAfter <= 0)
		health := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if !ready.Load() {
				http.Error(w, "not ready yet", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "ok\n")
		})
		if cfg.ReadyAfter > 0 {
			t := time.AfterFunc(cfg.ReadyAfter, func() {
				if err := record("ready"); err != nil {
					slog.Error("record ready", "err", err)
				}
				ready.Store(true)
			})
			defer t.Stop()
		}
		go func() { srvErr <- serve.HTTP(ctx, cfg.Listen, health, time.Second) }()
	} else {
		srvErr <- nil
	}
	select {
	case err := <-srvErr: // the probe server failed to start (or ctx is done)
		if err != nil {
			return err
		}
		<-ctx.Done()
	case <-ctx.Done():
		if err := <-srvErr; err != nil {
			return err
		}
	}
	return record("stop")
}
