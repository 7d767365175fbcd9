package identity

import (
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

const serviceAccountPrefix = "system:serviceaccount:"

// ServiceAccountID maps an authenticated Kubernetes username
// (system:serviceaccount:<ns>:<sa>) to spiffe://<td>/ns/<ns>/sa/<sa>.
func ServiceAccountID(td spiffeid.TrustDomain, username string) (spiffeid.ID, error) {
	rest, ok := strings.CutPrefix(username, serviceAccountPrefix)
	if !ok {
		return spiffeid.ID{}, &InvalidTokenError{Reason: fmt.Sprintf("user %q is not a ServiceAccount", username)}
	}
	ns, sa, ok := strings.Cut(rest, ":")
	if !ok || ns == "" || sa == "" || strings.Contains(sa, ":") {
		return spiffeid.ID{}, &InvalidTokenError{Reason: fmt.Sprintf("malformed ServiceAccount user %q", username)}
	}
	id, err := spiffeid.FromSegments(td, "ns", ns, "sa", sa)
	if err != nil {
		return spiffeid.ID{}, &InvalidTokenError{Reason: fmt.Sprintf("ServiceAccount %s/%s: %v", ns, sa, err)}
	}
	return id, nil
}
