// Command weft-testapp (image weft/testapp) is the multipurpose program of the end-to-end tests:
// weft-testapp http|tcp-echo|whoami|get|tcp|token-review|webhook|record-lifecycle|sleep|exit|backend|load.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/e2e/testapp"
)

// exitError carries an exit code chosen by the exit subcommand.
type exitError struct{ code int }

func (e exitError) Error() string { return "exit " + strconv.Itoa(e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := root().ExecuteContext(ctx)
	stop()
	if e, ok := err.(exitError); ok {
		os.Exit(e.code)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "weft-testapp:", err)
		os.Exit(1)
	}
}

func root() *cobra.Command {
	r := &cobra.Command{Use: "weft-testapp", Short: "multipurpose program for weft's end-to-end tests", SilenceUsage: true, SilenceErrors: true}
	r.AddCommand(httpCmd(), tcpEchoCmd(), whoamiCmd(), getCmd(), tcpCmd(), tokenReviewCmd(), webhookCmd(), lifecycleCmd(), sleepCmd(), exitCmd(), backendCmd(), loadCmd())
	return r
}

func httpCmd() *cobra.Command {
	var addr string
	c := &cobra.Command{Use: "http", Short: "serve / (echo), /uid, /healthz, /status/{code}, /sleep?d=", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return testapp.ServeHTTP(c.Context(), addr) }}
	c.Flags().StringVar(&addr, "addr", ":8080", "listen address")
	return c
}

func tcpEchoCmd() *cobra.Command {
	var addr string
	c := &cobra.Command{Use: "tcp-echo", Short: "echo every TCP connection back", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return testapp.ServeTCPEcho(c.Context(), addr) }}
	c.Flags().StringVar(&addr, "addr", ":9000", "listen address")
	return c
}

func whoamiCmd() *cobra.Command {
	return &cobra.Command{Use: "whoami", Short: "print uid, gid, groups and capabilities", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return testapp.Whoami(c.OutOrStdout()) }}
}

func getCmd() *cobra.Command {
	var cfg testapp.GetConfig
	c := &cobra.Command{Use: "get <url>", Short: "HTTP GET with bounded retries; prints the body", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cfg.URL = args[0]
			return testapp.Get(c.Context(), cfg, c.OutOrStdout())
		}}
	c.Flags().IntVar(&cfg.Attempts, "attempts", 30, "how many times to try")
	c.Flags().DurationVar(&cfg.Interval, "interval", time.Second, "wait between attempts")
	c.Flags().DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "bound on each attempt")
	return c
}

func tcpCmd() *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{Use: "tcp <addr> <msg>", Short: "send msg over TCP and print the reply", Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			return testapp.TCP(c.Context(), args[0], args[1], timeout, c.OutOrStdout())
		}}
	c.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "bound on the whole exchange")
	return c
}

func tokenReviewCmd() *cobra.Command {
	var cfg testapp.TokenReviewConfig
	c := &cobra.Command{Use: "token-review", Short: "TokenReview a projected token; print the username", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return testapp.TokenReview(c.Context(), cfg, c.OutOrStdout())
		}}
	c.Flags().StringVar(&cfg.TokenFile, "token-file", "/var/run/secrets/tokens/token", "token to review")
	c.Flags().StringVar(&cfg.Audience, "audience", "identity.weft.io", "audience to review the token for")
	c.Flags().StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig instead of the in-cluster config")
	return c
}

func webhookCmd() *cobra.Command {
	cfg := testapp.WebhookConfig{}
	c := &cobra.Command{Use: "webhook", Short: "TLS mutating webhook adding weft.io/mutated-by=testapp to pods (POST /mutate)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return testapp.ServeWebhook(c.Context(), cfg) }}
	c.Flags().StringVar(&cfg.Addr, "addr", ":8443", "listen address")
	c.Flags().StringVar(&cfg.CertFile, "cert", "/etc/webhook/tls.crt", "serving certificate (PEM)")
	c.Flags().StringVar(&cfg.KeyFile, "key", "/etc/webhook/tls.key", "private key (PEM)")
	return c
}

func lifecycleCmd() *cobra.Command {
	var cfg testapp.LifecycleConfig
	c := &cobra.Command{Use: "record-lifecycle <file>", Short: "append 'start <name> <unixnano>' now and 'stop <name> <unixnano>' on SIGTERM; '-' means stdout only", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cfg.File = args[0]
			if cfg.Name == "" {
				cfg.Name, _ = os.Hostname()
			}
			return testapp.RecordLifecycle(c.Context(), cfg, c.OutOrStdout())
		}}
	c.Flags().StringVar(&cfg.Name, "name", os.Getenv("CONTAINER_NAME"), "name in the lines (default $CONTAINER_NAME, else the hostname)")
	c.Flags().StringVar(&cfg.Listen, "listen", "", "serve /healthz here while running (for probes)")
	c.Flags().DurationVar(&cfg.ReadyAfter, "ready-after", 0, "with --listen: answer 503 this long, then record ready and answer 200")
	c.Flags().DurationVar(&cfg.For, "for", 0, "stop by itself after this long (0: only on SIGTERM)")
	return c
}

func sleepCmd() *cobra.Command {
	return &cobra.Command{Use: "sleep [duration]", Short: "sleep for duration (default: until SIGTERM)", Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			if len(args) == 1 {
				d, err := time.ParseDuration(args[0])
				if err != nil {
					return fmt.Errorf("duration %q: %w", args[0], err)
				}
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			<-ctx.Done()
			return nil
		}}
}

func exitCmd() *cobra.Command {
	return &cobra.Command{Use: "exit <code>", Short: "exit with code", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			code, err := strconv.Atoi(args[0])
			if err != nil || code < 0 || code > 255 {
				return fmt.Errorf("exit code %q: want 0..255", args[0])
			}
			if code == 0 {
				return nil
			}
			return exitError{code}
		}}
}
