package kubeletapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// user is an authenticated caller.
type user struct {
	name   string
	groups []string
}

// reviewer is what authentication and authorization delegate to: the apiserver's TokenReview
// and SubjectAccessReview, as kubelet's webhook modes do.
type reviewer interface {
	// reviewToken returns the token's user; ok false means the token is not valid.
	reviewToken(ctx context.Context, token string) (u user, ok bool, err error)
	// allowed asks whether u may verb the node's subresource.
	allowed(ctx context.Context, u user, verb, subresource, node string) (bool, string, error)
}

// attributes maps a request to the node subresource and verb kubelet checks: /stats →
// nodes/stats, /logs → nodes/log, /metrics → nodes/metrics, /healthz → nodes/healthz,
// everything else (containerLogs, exec, attach, portForward, pods) → nodes/proxy.
func attributes(method, path string) (verb, subresource string) {
	switch method {
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
	default:
		verb = "get"
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	switch first {
	case "stats":
		subresource = "stats"
	case "logs":
		subresource = "log"
	case "metrics":
		subresource = "metrics"
	case "healthz":
		subresource = "healthz"
	default:
		subresource = "proxy"
	}
	return verb, subresource
}

// decision is the outcome of authenticating and authorizing one request.
type decision struct {
	code   int // 0 means allowed; else http.StatusUnauthorized or http.StatusForbidden
	reason string
}

// authorize decides a request: a client certificate verified against the cluster CA
// authenticates its CN and O; otherwise a bearer token goes to TokenReview. system:masters is
// allowed everything (the apiserver's kubelet client certificate is in it); everyone else
// needs the SubjectAccessReview on the node's subresource to pass.
func authorize(r *http.Request, rv reviewer, node string) decision {
	var u user
	switch {
	case r.TLS != nil && len(r.TLS.VerifiedChains) > 0:
		c := r.TLS.VerifiedChains[0][0]
		u = user{name: c.Subject.CommonName, groups: c.Subject.Organization}
	case strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		got, ok, err := rv.reviewToken(r.Context(), tok)
		if err != nil {
			return decision{http.StatusUnauthorized, "token review failed: " + err.Error()}
		}
		if !ok {
			return decision{http.StatusUnauthorized, "the bearer token is not valid"}
		}
		u = got
	default:
		return decision{http.StatusUnauthorized, "no client certificate and no bearer token"}
	}
	if slices.Contains(u.groups, "system:masters") {
		return decision{}
	}
	verb, sub := attributes(r.Method, r.URL.Path)
	ok, why, err := rv.allowed(r.Context(), u, verb, sub, node)
	if err != nil {
		return decision{http.StatusForbidden, "subject access review failed: " + err.Error()}
	}
	if !ok {
		msg := fmt.Sprintf("user %q cannot %s nodes/%s of node %q", u.name, verb, sub, node)
		if why != "" {
			msg += ": " + why
		}
		return decision{http.StatusForbidden, msg}
	}
	return decision{}
}

// apiReviewer is the reviewer backed by the apiserver.
type apiReviewer struct{ client kubernetes.Interface }

func (a apiReviewer) reviewToken(ctx context.Context, token string) (user, bool, error) {
	tr, err := a.client.AuthenticationV1().TokenReviews().Create(ctx,
		&authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return user{}, false, fmt.Errorf("create TokenReview: %w", err)
	}
	if !tr.Status.Authenticated {
		return user{}, false, nil
	}
	return user{name: tr.Status.User.Username, groups: tr.Status.User.Groups}, true, nil
}

func (a apiReviewer) allowed(ctx context.Context, u user, verb, sub, node string) (bool, string, error) {
	sar, err := a.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
		Spec: authzv1.SubjectAccessReviewSpec{
			User:   u.name,
			Groups: u.groups,
			ResourceAttributes: &authzv1.ResourceAttributes{
				Verb: verb, Resource: "nodes", Subresource: sub, Name: node,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("create SubjectAccessReview: %w", err)
	}
	return sar.Status.Allowed, sar.Status.Reason, nil
}
