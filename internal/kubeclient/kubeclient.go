// Package kubeclient builds Kubernetes clients the way kubectl finds its
// configuration: an explicit kubeconfig, then $KUBECONFIG, then
// ~/.kube/config, then in-cluster.
package kubeclient

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options select the configuration; zero values mean kubectl's defaults.
type Options struct {
	Kubeconfig string // path; "" means $KUBECONFIG, ~/.kube/config, then in-cluster
	Context    string // kubeconfig context; "" means the current one
	UserAgent  string // "" means client-go's default
}

// ErrNoCluster is returned (wrapped, with where the configuration was looked for) when no
// kubeconfig names a cluster and the process does not run in one.
var ErrNoCluster = errors.New("no cluster configured")

// Config returns the REST configuration for opts.
func Config(opts Options) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = opts.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: opts.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		// client-go's own text says "try setting KUBERNETES_MASTER", which nothing reads any more.
		return nil, noCluster(rules)
	}
	if err != nil {
		return nil, fmt.Errorf("load kubernetes client config: %w", err)
	}
	if opts.UserAgent != "" {
		cfg.UserAgent = opts.UserAgent
	}
	return cfg, nil
}

// Clientset returns a typed clientset for opts.
func Clientset(opts Options) (kubernetes.Interface, error) {
	cfg, err := Config(opts)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create kubernetes client: %w", err)
	}
	return cs, nil
}

// noCluster explains ErrNoCluster: where kubeconfigs were looked for and how to name one.
func noCluster(rules *clientcmd.ClientConfigLoadingRules) error {
	where := rules.GetLoadingPrecedence()
	if rules.ExplicitPath != "" {
		where = []string{rules.ExplicitPath}
	}
	return fmt.Errorf("%w: set KUBECONFIG or pass --kubeconfig to a kubeconfig with a current context "+
		"(looked in %s; not running in a pod)", ErrNoCluster, strings.Join(where, ", "))
}
