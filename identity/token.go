package identity

import (
	"context"
	"fmt"
	"slices"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DefaultAudience is the audience of the projected tokens proxies present.
const DefaultAudience = "identity.weft.io"

// TokenReviewer authenticates a ServiceAccount token and returns the username
// it proves.
type TokenReviewer interface {
	Review(ctx context.Context, token string) (username string, err error)
}

// KubeTokenReviewer reviews tokens with the Kubernetes TokenReview API.
type KubeTokenReviewer struct {
	Client kubernetes.Interface
	// Audience the token must be issued for; "" means DefaultAudience.
	Audience string
}

// Review implements TokenReviewer. A token that does not authenticate is an
// *InvalidTokenError; an API failure is returned wrapped.
func (r *KubeTokenReviewer) Review(ctx context.Context, token string) (string, error) {
	if token == "" {
		return "", &InvalidTokenError{Reason: "empty token"}
	}
	aud := r.Audience
	if aud == "" {
		aud = DefaultAudience
	}
	tr, err := r.Client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{aud}},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token review: %w", err)
	}
	if tr.Status.Error != "" {
		return "", &InvalidTokenError{Reason: tr.Status.Error}
	}
	if !tr.Status.Authenticated {
		return "", &InvalidTokenError{Reason: "not authenticated"}
	}
	if !slices.Contains(tr.Status.Audiences, aud) {
		return "", &InvalidTokenError{Reason: fmt.Sprintf("token audiences %v do not include %q", tr.Status.Audiences, aud)}
	}
	return tr.Status.User.Username, nil
}
