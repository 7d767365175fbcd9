// Command weft-bench runs weft's proxy benchmark (docs/benchmarks.md). Subcommands:
//
//	weft-bench run      orchestrate every peer and load, write results
//	weft-bench report   redraw latency.svg from results.json
//	weft-bench backend  the 1 KiB HTTP / gRPC / TCP-echo backend (inside the server netns)
//	weft-bench load     the open-loop load generator (inside the client netns), JSON to stdout
//	weft-bench goproxy  the Go httputil.ReverseProxy peer
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/weftmesh/weft/benchmarks/harness"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: weft-bench run|report|backend|load|goproxy [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "run":
		err = run(ctx, os.Args[2:])
	case "report":
		fs := flag.NewFlagSet("report", flag.ExitOnError)
		dir := fs.String("dir", "benchmarks/results", "directory holding results.json; latency.svg is rewritten")
		_ = fs.Parse(os.Args[2:])
		err = report(*dir)
	case "backend":
		fs := flag.NewFlagSet("backend", flag.ExitOnError)
		host := fs.String("host", "0.0.0.0", "address to listen on")
		_ = fs.Parse(os.Args[2:])
		err = harness.RunBackend(ctx, *host)
	case "load":
		err = load(ctx, os.Args[2:])
	case "goproxy":
		fs := flag.NewFlagSet("goproxy", flag.ExitOnError)
		kind := fs.String("kind", "http1", "http1, grpc or tcp")
		listen := fs.String("listen", "127.0.0.1:4140", "listen address")
		up := fs.String("upstream", "", "upstream host:port")
		_ = fs.Parse(os.Args[2:])
		err = harness.RunGoProxy(ctx, harness.Kind(*kind), *listen, *up)
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "weft-bench:", err)
		os.Exit(1)
	}
}

func load(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	var c harness.LoadConfig
	kind := fs.String("kind", "http1", "http1, grpc or tcp")
	fs.StringVar(&c.Target, "target", "", "host:port")
	fs.IntVar(&c.RPS, "rps", 1000, "constant request rate")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "unrecorded warm-up")
	fs.IntVar(&c.Conns, "conns", 64, "connections")
	announce := fs.Bool("announce-window", false, "write harness.MeasureMarker to stderr when the measured window starts")
	_ = fs.Parse(args)
	c.Kind = harness.Kind(*kind)
	if *announce {
		c.OnMeasure = func() { fmt.Fprintln(os.Stderr, harness.MeasureMarker) }
	}
	res, err := harness.RunLoad(ctx, c)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	out := fs.String("out", "benchmarks/results", "results directory")
	weft := fs.String("weft-proxy", "bin/weft-proxy", "weft-proxy binary")
	peers := fs.String("peers", "", "comma-separated peers (default: all)")
	dur := fs.Duration("duration", 10*time.Second, "measured window per point")
	warm := fs.Duration("warmup", 2*time.Second, "warm-up per point")
	note := fs.String("note", "", "extra text for the report header (e.g. the weft commit)")
	repeat := fs.Int("repeat", 2, "trials per point; the one with the lowest p99 (least disturbed) is reported")
	_ = fs.Parse(args)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	weftAbs, _ := filepath.Abs(*weft)
	cfg := harness.Config{Self: self, WeftBin: weftAbs, Duration: *dur, Warmup: *warm, Repeat: *repeat,
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if *peers != "" {
		for _, name := range strings.Split(*peers, ",") {
			found := false
			for _, p := range harness.Peers {
				if p.Name == name {
					cfg.Peers, found = append(cfg.Peers, p), true
				}
			}
			if !found {
				return fmt.Errorf("unknown peer %q", name)
			}
		}
	}
	rs, err := harness.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	j, _ := json.MarshalIndent(rs, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "results.json"), j, 0o644); err != nil {
		return err
	}
	var md strings.Builder
	harness.WriteMarkdown(&md, rs, strings.TrimSpace(fmt.Sprintf("Measured %s, %s per point after %s warm-up, best of %d trials by p99, on %s (load average at the end: %s). %s",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), *dur, *warm, *repeat, hostDesc(), loadAvg(), *note)))
	if err := os.WriteFile(filepath.Join(*out, "results.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	var svg strings.Builder
	harness.WriteSVG(&svg, rs)
	fmt.Print(md.String())
	return os.WriteFile(filepath.Join(*out, "latency.svg"), []byte(svg.String()), 0o644)
}

func hostDesc() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	model := "unknown CPU"
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			n++
		}
	}
	return fmt.Sprintf("%d × %s", n, model)
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func report(dir string) error {
	f, err := os.Open(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	defer f.Close()
	rs, err := harness.ReadResults(f)
	if err != nil {
		return err
	}
	var svg strings.Builder
	harness.WriteSVG(&svg, rs)
	return os.WriteFile(filepath.Join(dir, "latency.svg"), []byte(svg.String()), 0o644)
}
