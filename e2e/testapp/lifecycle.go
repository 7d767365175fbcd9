package testapp

import (
	"context"
	"fmt"
	"io"
	"os"
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
	// For ends the run by itself after this long; zero means run until ctx is done (SIGTERM).
	For time.Duration
}

// RecordLifecycle writes "start <name> <unixnano>" when it starts and "stop <name> <unixnano>" when
// ctx is done (SIGTERM) or For has passed, to out and to File. The timestamps let a test order
// the containers of a pod.
func RecordLifecycle(ctx context.Context, cfg LifecycleConfig, out io.Writer) error {
	if cfg.Name == "" {
		return fmt.Errorf("record-lifecycle: a name is required")
	}
	record := func(event string) error {
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
		go func() { srvErr <- serve.HTTP(ctx, cfg.Listen, &serve.Health{}, time.Second) }()
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
