// Package chromium drives the Debian package's headless Chromium for the
// dashboard's browser tests: load a page, let its scripts run for a bounded
// virtual time, and return the resulting DOM or a screenshot.
package chromium

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// ErrNotInstalled says no Chromium binary is on PATH.
var ErrNotInstalled = errors.New("chromium is not installed (apt-get install chromium, or bash e2e/scripts/deps.sh test)")

// Binaries are the names looked up on PATH, in order.
var Binaries = []string{"chromium", "chromium-browser", "google-chrome"}

// Find returns the path of the first of Binaries on PATH.
func Find() (string, error) {
	for _, b := range Binaries {
		if p, err := exec.LookPath(b); err == nil {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

// Options bound one page load; zero values mean the defaults.
type Options struct {
	// Budget is the virtual time the page's scripts get (default 3s):
	// Chromium advances its clock past timers and waits for fetches
	// within it, then dumps.
	Budget time.Duration
	// Width and Height of the window (default 1400x900).
	Width, Height int
}

func (o Options) args(dir string) []string {
	if o.Budget == 0 {
		o.Budget = 3 * time.Second
	}
	if o.Width == 0 || o.Height == 0 {
		o.Width, o.Height = 1400, 900
	}
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--hide-scrollbars", "--user-data-dir=" + dir,
		"--virtual-time-budget=" + strconv.FormatInt(o.Budget.Milliseconds(), 10),
		"--window-size=" + strconv.Itoa(o.Width) + "," + strconv.Itoa(o.Height),
	}
}

// run starts Chromium with a fresh profile and returns its stdout.
func run(ctx context.Context, extra []string, o Options) ([]byte, error) {
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "weft-chromium-")
	if err != nil {
		return nil, fmt.Errorf("chromium profile: %w", err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(o.args(dir), extra...)...)
	cmd.Dir = dir
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("chromium %v: %w\n%s", extra, err, tailBytes(stderr.Bytes(), 2000))
	}
	return out.Bytes(), nil
}

// DumpDOM loads url and returns the serialised DOM after o.Budget.
func DumpDOM(ctx context.Context, url string, o Options) (string, error) {
	out, err := run(ctx, []string{"--dump-dom", url}, o)
	return string(out), err
}

// Screenshot loads url and writes a PNG of the window to file.
func Screenshot(ctx context.Context, url, file string, o Options) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return fmt.Errorf("screenshot path: %w", err)
	}
	if _, err := run(ctx, []string{"--screenshot=" + abs, url}, o); err != nil {
		return err
	}
	if st, err := os.Stat(abs); err != nil || st.Size() == 0 {
		return fmt.Errorf("chromium wrote no screenshot to %s: %v", abs, err)
	}
	return nil
}

func tailBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
