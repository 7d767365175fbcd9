package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
	"github.com/weftmesh/weft/manifests"
)

// installFlags are the install flags that are not Values fields.
type installFlags struct {
	crds          bool
	gatewayAPI    bool
	ignoreCluster bool
	anchorsFile   string
	issuerCert    string
	issuerKey     string
}

func installCmd(g *globals) *cobra.Command {
	var fl installFlags
	v := &g.values
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Print the weft CRDs (--crds) or control plane as YAML for kubectl apply",
		Long: `Print weft's Kubernetes manifests. Install in two steps:

  weft install --crds | kubectl apply -f -
  weft install | kubectl apply -f -

Without --identity-* files a new trust anchor and issuer are generated; keep
them (kubectl get -n weft secret/weft-identity-issuer) or bring your own for
production. install checks that the CRDs are present and weft is not already
installed; --ignore-cluster renders without talking to the cluster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fl.crds {
				out, err := renderCRDs(cmd, g, &fl)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			out, err := renderInstall(cmd.Context(), g, &fl)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&fl.crds, "crds", false, "print only the CustomResourceDefinitions (apply them first)")
	f.BoolVar(&fl.gatewayAPI, "gateway-api", false, "with --crds: also the HTTPFault CRD and the Gateway API "+manifests.GatewayAPIVersion+" HTTPRoute/GRPCRoute CRDs not already installed at that or a newer release")
	f.BoolVar(&fl.ignoreCluster, "ignore-cluster", false, "render without checking the cluster for CRDs or an existing install")
	f.DurationVar(&g.cfg.CRDWait, "crd-wait", g.cfg.CRDWait, "how long to wait for just-applied CRDs to be served before refusing")
	f.StringVar(&fl.anchorsFile, "identity-trust-anchors-file", "", "PEM bundle of trust anchors (with the issuer files; default: generate)")
	f.StringVar(&fl.issuerCert, "identity-issuer-certificate-file", "", "PEM issuer certificate, then any intermediates, signed by a trust anchor")
	f.StringVar(&fl.issuerKey, "identity-issuer-key-file", "", "PEM private key of the issuer certificate")
	f.StringVar(&v.TrustDomain, "identity-trust-domain", v.TrustDomain, "SPIFFE trust domain of workload identities")
	f.DurationVar(&v.IdentityIssuanceLifetime, "identity-issuance-lifetime", v.IdentityIssuanceLifetime, "lifetime of the certificates issued to proxies")
	f.StringVar(&v.ClusterDomain, "cluster-domain", v.ClusterDomain, "Kubernetes cluster DNS domain")
	f.StringVar(&v.ProxyImage, "proxy-image", v.ProxyImage, "proxy image, without tag")
	f.StringVar(&v.ProxyVersion, "proxy-version", v.ProxyVersion, "proxy image tag")
	f.StringVar(&v.LogLevel, "proxy-log-level", v.LogLevel, "proxy log level: debug, info, warn or error")
	f.StringVar(&v.DefaultInboundPolicy, "default-inbound-policy", v.DefaultInboundPolicy, "inbound policy of meshed pods: all-unauthenticated or all-authenticated")
	f.StringVar(&v.CPURequest, "proxy-cpu-request", v.CPURequest, "proxy CPU request (\"\" for none)")
	f.StringVar(&v.CPULimit, "proxy-cpu-limit", v.CPULimit, "proxy CPU limit (\"\" for none)")
	f.StringVar(&v.MemoryRequest, "proxy-memory-request", v.MemoryRequest, "proxy memory request (\"\" for none)")
	f.StringVar(&v.MemoryLimit, "proxy-memory-limit", v.MemoryLimit, "proxy memory limit (\"\" for none)")
	f.DurationVar(&v.ShutdownGracePeriod, "proxy-shutdown-grace-period", v.ShutdownGracePeriod, "how long a proxy drains connections after SIGTERM")
	f.StringVar(&v.ControllerImage, "controller-image", v.ControllerImage, "control-plane image, without tag")
	f.StringVar(&v.ControllerVersion, "controller-version", v.ControllerVersion, "control-plane image tag")
	f.BoolVar(&v.HA, "ha", v.HA, "high availability: 3 replicas per component, pod anti-affinity, PodDisruptionBudgets")
	f.Int32Var(&v.ControllerReplicas, "controller-replicas", v.ControllerReplicas, "replicas per control-plane component (default 1, or 3 with --ha)")
	f.StringVar(&v.WebhookFailurePolicy, "webhook-failure-policy", v.WebhookFailurePolicy, "when the injector is unreachable: Ignore (create pods unmeshed) or Fail (refuse pod creation)")
	return cmd
}

// renderInstall validates the values, checks the cluster and renders.
func renderInstall(ctx context.Context, g *globals, fl *installFlags) ([]byte, error) {
	v := g.values
	if err := v.Validate(); err != nil {
		return nil, fmt.Errorf("invalid install flags: %w", err)
	}
	given, err := readIdentityFiles(fl)
	if err != nil {
		return nil, err
	}
	if !fl.ignoreCluster {
		if err := preinstallCheck(ctx, g); err != nil {
			return nil, err
		}
	}
	certs, err := manifests.NewCerts(given, &v, g.cfg.Generator, g.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("identity certificates: %w", err)
	}
	return manifests.Render(v, certs)
}

func readIdentityFiles(fl *installFlags) (manifests.Certs, error) {
	var c manifests.Certs
	files := []struct {
		flag, path string
		dst        *[]byte
	}{
		{"--identity-trust-anchors-file", fl.anchorsFile, &c.TrustAnchorsPEM},
		{"--identity-issuer-certificate-file", fl.issuerCert, &c.IssuerCertPEM},
		{"--identity-issuer-key-file", fl.issuerKey, &c.IssuerKeyPEM},
	}
	n := 0
	for _, f := range files {
		if f.path != "" {
			n++
		}
	}
	if n != 0 && n != len(files) {
		return c, errors.New("--identity-trust-anchors-file, --identity-issuer-certificate-file and --identity-issuer-key-file go together: give all three or none")
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return c, fmt.Errorf("read %s: %w", f.flag, err)
		}
		*f.dst = b
	}
	return c, nil
}

// preinstallCheck refuses an install the cluster is not ready for: the CRDs
// must be there, and weft must not already be installed in the namespace.
func preinstallCheck(ctx context.Context, g *globals) error {
	ns := g.values.ControlPlaneNamespace
	unreachable := func(err error) error {
		return fmt.Errorf("cannot check the cluster before installing: %w\n(pass --ignore-cluster to render the manifests without checking)", err)
	}
	cs, err := g.client()
	if err != nil {
		return unreachable(err)
	}
	if err := waitCRDs(ctx, cs, g.cfg.CRDWait); err != nil {
		if errors.Is(err, errCRDsMissing) {
			return err
		}
		return unreachable(err)
	}
	found, err := existingInstall(ctx, cs, ns)
	if err != nil {
		return unreachable(err)
	}
	if found != "" {
		return fmt.Errorf("weft is already installed in namespace %s (found %s); remove it first with `weft uninstall --weft-namespace %s | kubectl delete -f -`, install into another --weft-namespace, or pass --ignore-cluster to render anyway", ns, found, ns)
	}
	return nil
}

var errCRDsMissing = errors.New("the weft CRDs are not installed")

// waitCRDs checks that the CRDs are served, waiting up to wait for a CRD that
// was just applied to be Established: `weft install --crds | kubectl apply -f -`
// directly followed by `weft install | kubectl apply -f -` must work.
func waitCRDs(ctx context.Context, cs kubernetes.Interface, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := checkCRDs(cs)
		if err == nil || !errors.Is(err, errCRDsMissing) || !time.Now().Before(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func checkCRDs(cs kubernetes.Interface) error {
	gv := sp.Group + "/" + sp.Version
	list, err := cs.Discovery().ServerResourcesForGroupVersion(gv)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w (API %s not served); run `weft install --crds | kubectl apply -f -` first, or pass --ignore-cluster", errCRDsMissing, gv)
	}
	if err != nil {
		return fmt.Errorf("discover %s: %w", gv, err)
	}
	for _, r := range list.APIResources {
		if r.Name == sp.Resource {
			return nil
		}
	}
	return fmt.Errorf("%w (%s.%s missing); run `weft install --crds | kubectl apply -f -` first, or pass --ignore-cluster", errCRDsMissing, sp.Resource, sp.Group)
}

// existingInstall names an object of an install in ns, or "" when there is none.
func existingInstall(ctx context.Context, cs kubernetes.Interface, ns string) (string, error) {
	_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, manifests.ConfigName, metav1.GetOptions{})
	switch {
	case err == nil:
		return "ConfigMap " + ns + "/" + manifests.ConfigName, nil
	case !apierrors.IsNotFound(err):
		return "", fmt.Errorf("get ConfigMap %s/%s: %w", ns, manifests.ConfigName, err)
	}
	name := manifests.ClusterName(ns, manifests.InjectorName)
	_, err = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return "MutatingWebhookConfiguration " + name, nil
	case !apierrors.IsNotFound(err):
		return "", fmt.Errorf("get MutatingWebhookConfiguration %s: %w", name, err)
	}
	return "", nil
}
