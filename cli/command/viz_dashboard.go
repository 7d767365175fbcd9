package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/weftmesh/weft/internal/kubeclient"
	"github.com/weftmesh/weft/internal/version"
	"github.com/weftmesh/weft/viz/metricsapi"
)

// DefaultDashboardPort is where `weft viz dashboard` listens by default.
const DefaultDashboardPort = 50750

func vizDashboardCmd(g *globals) *cobra.Command {
	var (
		port int
		open bool
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the viz web dashboard on 127.0.0.1, through the API server's service proxy",
		Long: `dashboard listens on 127.0.0.1 (port 50750; --port 0 picks a free one) and
forwards the browser's requests to the viz extension's web server through the
API server's service proxy, with your kubeconfig's credentials: it works
wherever kubectl works, with no port-forward. It prints the URL and runs until
Ctrl-C; --open also opens it with xdg-open. See docs/viz-dashboard.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port < 0 || port > 65535 {
				return fmt.Errorf("--port %d is not a port: use 0..65535 (0 picks a free one)", port)
			}
			rc, err := kubeclient.Config(g.kube)
			if err != nil {
				return err
			}
			rc.UserAgent = "weft/" + version.Version
			proxy, err := newDashboardProxy(rc)
			if err != nil {
				return err
			}
			if err := checkDashboard(cmd.Context(), rc, proxy); err != nil {
				return err
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			lis, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (pass --port N for another port, or --port 0 for a free one)", addr, err)
			}
			proxy.allow(lis.Addr())
			url := "http://" + lis.Addr().String() + "/"
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "weft viz dashboard: %s\n", url)
			fmt.Fprintf(out, "(serving %s through the API server's service proxy at %s; Ctrl-C stops it)\n", metricsapi.Namespace+"/"+metricsapi.ServiceName, rc.Host)
			if open {
				openURL(url, cmd.ErrOrStderr())
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serveDashboard(ctx, lis, proxy)
		},
	}
	f := cmd.Flags()
	f.IntVar(&port, "port", DefaultDashboardPort, "local port on 127.0.0.1 (0 picks a free one)")
	f.BoolVar(&open, "open", false, "open the dashboard in a browser (xdg-open)")
	return cmd
}

// serveDashboard serves h on lis until ctx ends, then stops within 5 s.
func serveDashboard(ctx context.Context, lis net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve the dashboard: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}

// checkDashboard says what is missing before the browser finds out: the
// viz Service, a ready viz pod, a viz version that serves the dashboard. It
// fetches the page the way the browser will, through d.
func checkDashboard(ctx context.Context, rc *rest.Config, d *dashboardProxy) error {
	ctx, cancel := context.WithTimeout(ctx, ClientTimeout)
	defer cancel()
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("create kubernetes client: %w", err)
	}
	if _, err := cs.CoreV1().Services(metricsapi.Namespace).Get(ctx, metricsapi.ServiceName, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return metricsapi.ErrNotInstalled
		}
		return fmt.Errorf("find the viz service: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base.String()+"/", nil)
	if err != nil {
		return fmt.Errorf("dashboard request: %w", err)
	}
	resp, err := d.rp.Transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("reach the viz dashboard through the API server's service proxy: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK && strings.Contains(string(body), `id="main"`):
		return nil
	case resp.StatusCode == http.StatusOK:
		return errors.New("the viz extension's / is not the dashboard page: reinstall it with this weft version (weft viz install | kubectl apply -f -)")
	case resp.StatusCode == http.StatusNotFound:
		return errors.New("the viz extension serves no dashboard (it predates weft viz dashboard): reinstall it with this weft version (weft viz install | kubectl apply -f -)")
	case resp.StatusCode == http.StatusServiceUnavailable:
		return fmt.Errorf("the viz extension has no ready pod (kubectl -n %s rollout status deploy/%s): %s", metricsapi.Namespace, metricsapi.ServiceName, statusMessage(body))
	}
	return fmt.Errorf("reach the viz dashboard through the API server's service proxy: %s: %s", resp.Status, statusMessage(body))
}

// statusMessage is a Kubernetes Status answer's message, else the body.
func statusMessage(body []byte) string {
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Message != "" {
		return st.Message
	}
	return strings.TrimSpace(string(body))
}

// openURL starts xdg-open on url if there is one, and otherwise says how
// to open it.
func openURL(url string, errOut io.Writer) {
	bin, err := exec.LookPath("xdg-open")
	if err != nil {
		fmt.Fprintf(errOut, "no xdg-open on PATH: open %s in a browser\n", url)
		return
	}
	c := exec.Command(bin, url)
	if err := c.Start(); err != nil {
		fmt.Fprintf(errOut, "xdg-open %s: %v: open it in a browser\n", url, err)
		return
	}
	go func() { _ = c.Wait() }()
}
