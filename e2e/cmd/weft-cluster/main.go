// Command weft-cluster runs the local Kubernetes cluster (etcd, kube-apiserver,
// kube-controller-manager and the weft node agent) on this machine.
//
//	weft-cluster up [--no-node]   start it, or reuse a healthy running one
//	weft-cluster down             stop everything and remove its state
//	weft-cluster status           component health and the kubectl hint
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/weftmesh/weft/e2e/cluster"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "weft-cluster:", err)
		os.Exit(1)
	}
}

func usage(fs *flag.FlagSet) func() {
	return func() {
		fmt.Fprintln(fs.Output(), "usage: weft-cluster up|down|status [flags]")
		fs.PrintDefaults()
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("weft-cluster", flag.ContinueOnError)
	fs.Usage = usage(fs)
	var cfg cluster.Config
	fs.StringVar(&cfg.CacheDir, "cache-dir", "", "state root (default $WEFT_CACHE_DIR or <repo>/.cache)")
	fs.StringVar(&cfg.BinDir, "bin-dir", "", "weft binaries (default $WEFT_BIN_DIR or <repo>/bin)")
	fs.BoolVar(&cfg.NoNode, "no-node", false, "up: start only the control plane, not bin/weft-node")
	if len(args) == 0 {
		fs.Usage()
		return fmt.Errorf("missing command")
	}
	cmd := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "up":
		c, err := cluster.Ensure(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Printf("cluster ready\nexport KUBECONFIG=%s\n", c.KubeconfigPath())
		return nil
	case "down":
		if err := cluster.Down(ctx, cfg); err != nil {
			return err
		}
		fmt.Println("cluster stopped and removed")
		return nil
	case "status":
		r, err := cluster.Status(ctx, cfg)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "COMPONENT\tPID\tHEALTH\tLOG")
		for _, s := range r.Components {
			pid := "-"
			if s.Pid != 0 {
				pid = fmt.Sprint(s.Pid)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, pid, s.Detail, s.Log)
		}
		tw.Flush()
		fmt.Printf("\nexport KUBECONFIG=%s\n", r.Kubeconfig)
		if !r.Healthy() {
			return fmt.Errorf("cluster not fully healthy (see above)")
		}
		return nil
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
}
