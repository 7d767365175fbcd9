package testapp

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TokenReviewConfig configures TokenReview.
type TokenReviewConfig struct {
	// TokenFile holds the token to review (a projected ServiceAccount token). Required.
	TokenFile string
	// Audience is the audience the token must be valid for; "" means the apiserver's default.
	Audience string
	// Kubeconfig is used instead of the in-cluster config when set.
	Kubeconfig string
}

// TokenReview reads the token in cfg.TokenFile, asks the apiserver (in-cluster config: the pod's
// own ServiceAccount, which needs create on tokenreviews) to review it for cfg.Audience, and
// writes the authenticated username. An unauthenticated token is an error naming the reason.
func TokenReview(ctx context.Context, cfg TokenReviewConfig, w io.Writer) error {
	raw, err := os.ReadFile(cfg.TokenFile)
	if err != nil {
		return fmt.Errorf("read token: %w", err)
	}
	token := strings.TrimSpace(string(raw))
	if token == "" {
		return fmt.Errorf("token file %s is empty", cfg.TokenFile)
	}
	rc, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}
	if cfg.Audience != "" {
		tr.Spec.Audiences = []string{cfg.Audience}
	}
	res, err := client.AuthenticationV1().TokenReviews().Create(ctx, tr, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create tokenreview: %w", err)
	}
	if !res.Status.Authenticated {
		return fmt.Errorf("token not authenticated for audience %q: %s", cfg.Audience, res.Status.Error)
	}
	_, err = fmt.Fprintln(w, res.Status.User.Username)
	return err
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmdConfig(kubeconfig)
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster config (needs KUBERNETES_SERVICE_HOST/PORT and the mounted ServiceAccount token): %w", err)
	}
	return rc, nil
}
