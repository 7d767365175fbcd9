package tap

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
)

// API group served by the component.
const (
	Group       = "tap.weft.io"
	Version     = "v1alpha1"
	ClusterRole = "weft-viz-tap"
	// MaxDuration bounds one tap request.
	MaxDuration = 10 * time.Minute
)

// Request is the body a client POSTs to …/<resource>/<name>/tap.
type Request struct {
	// Filter is a protojson tapv1.Filter.
	Filter   json.RawMessage `json:"filter,omitempty"`
	Max      int             `json:"max,omitempty"`
	MaxRPS   int             `json:"maxRps,omitempty"`
	Duration string          `json:"duration,omitempty"`
}

// Handler serves the aggregated API. Authentication is the API server's:
// only connections whose client certificate chains to RequestHeaderCAs and
// (when set) names one of AllowedNames may assert X-Remote-User/-Group.
type Handler struct {
	Client           kubernetes.Interface
	RequestHeaderCAs *x509.CertPool
	AllowedNames     []string
	Merger           func(Target) *Merger
}

// ServeHTTP routes discovery and tap requests.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, groups, err := h.authenticate(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	p := strings.Trim(r.URL.Path, "/")
	switch p {
	case "apis/" + Group + "/" + Version:
		writeDiscovery(w)
		return
	case "healthz", "readyz", "livez":
		_, _ = w.Write([]byte("ok"))
		return
	}
	// apis/tap.weft.io/v1alpha1/namespaces/{ns}[/{resource}/{name}]/tap
	parts := strings.Split(p, "/")
	if len(parts) < 6 || parts[0] != "apis" || parts[1] != Group || parts[2] != Version || parts[3] != "namespaces" || parts[len(parts)-1] != "tap" {
		http.NotFound(w, r)
		return
	}
	t := Target{Namespace: parts[4], Resource: "namespaces", Name: parts[4]}
	if len(parts) == 8 {
		t.Resource, t.Name = parts[5], parts[6]
	} else if len(parts) != 6 {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "tap requests are POST", http.StatusMethodNotAllowed)
		return
	}
	if msg, err := h.authorize(r.Context(), user, groups, t); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	} else if msg != "" {
		http.Error(w, msg, http.StatusForbidden)
		return
	}
	h.tap(w, r, t)
}

// authenticate reads the front-proxy identity from a verified client cert.
func (h *Handler) authenticate(r *http.Request) (string, []string, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || h.RequestHeaderCAs == nil {
		return "", nil, fmt.Errorf("tap API: only the Kubernetes API server may call (no front-proxy client certificate)")
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: h.RequestHeaderCAs, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return "", nil, fmt.Errorf("tap API: front-proxy certificate: %w", err)
	}
	if len(h.AllowedNames) > 0 && !slices.Contains(h.AllowedNames, leaf.Subject.CommonName) {
		return "", nil, fmt.Errorf("tap API: front-proxy certificate %q is not an allowed name", leaf.Subject.CommonName)
	}
	user := r.Header.Get("X-Remote-User")
	if user == "" {
		return "", nil, fmt.Errorf("tap API: no X-Remote-User")
	}
	return user, r.Header.Values("X-Remote-Group"), nil
}

// authorize asks the API server whether user may watch <resource>/tap; a
// non-empty message is the denial to show.
func (h *Handler) authorize(ctx context.Context, user string, groups []string, t Target) (string, error) {
	ns := t.Namespace
	if t.Resource == "namespaces" {
		ns = ""
	}
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: user, Groups: groups,
		ResourceAttributes: &authzv1.ResourceAttributes{
			Namespace: ns, Verb: "watch", Group: Group, Version: Version,
			Resource: t.Resource, Subresource: "tap", Name: t.Name,
		},
	}}
	res, err := h.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("tap API: subject access review: %w", err)
	}
	if res.Status.Allowed {
		return "", nil
	}
	return DeniedMessage(user, t), nil
}

// DeniedMessage names the missing permission and the binding that grants it.
func DeniedMessage(user string, t Target) string {
	where := "in namespace " + t.Namespace
	if t.Resource == "namespaces" {
		where = "(cluster scope)"
	}
	subject := "--user=" + user
	if ns, sa, ok := strings.Cut(strings.TrimPrefix(user, "system:serviceaccount:"), ":"); ok && strings.HasPrefix(user, "system:serviceaccount:") {
		subject = "--serviceaccount=" + ns + ":" + sa
	}
	return fmt.Sprintf("%s cannot tap %s/%s: missing permission \"watch\" on \"%s/tap\" (API group %s) %s.\nGrant it with:\n  kubectl create clusterrolebinding %s-tap --clusterrole=%s %s",
		user, t.Resource, t.Name, t.Resource, Group, where, sanitize(user), ClusterRole, subject)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}

func (h *Handler) tap(w http.ResponseWriter, r *http.Request, t Target) {
	var req Request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "tap request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	obs, dur, err := req.observe()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), dur)
	defer cancel()
	m := h.Merger(t)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	fl, _ := w.(http.Flusher)
	_ = m.Run(ctx, obs, req.Max, func(ev Event) error {
		if err := WriteEvent(bw, ev); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	})
}

func (r *Request) observe() (*tapv1.ObserveRequest, time.Duration, error) {
	obs := &tapv1.ObserveRequest{Filter: &tapv1.Filter{}}
	if len(r.Filter) > 0 {
		if err := protojson.Unmarshal(r.Filter, obs.Filter); err != nil {
			return nil, 0, fmt.Errorf("tap filter: %w", err)
		}
	}
	if r.Max < 0 || r.MaxRPS < 0 {
		return nil, 0, fmt.Errorf("tap request: max and maxRps must not be negative")
	}
	obs.Limit, obs.MaxRps = uint32(r.Max), uint32(r.MaxRPS)
	dur := MaxDuration
	if r.Duration != "" {
		d, err := time.ParseDuration(r.Duration)
		if err != nil || d <= 0 || d > MaxDuration {
			return nil, 0, fmt.Errorf("tap request: duration %q: want (0, %s]", r.Duration, MaxDuration)
		}
		dur = d
	}
	return obs, dur, nil
}

func writeDiscovery(w http.ResponseWriter) {
	list := metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: Group + "/" + Version}
	for _, res := range []string{"namespaces", "pods", "deployments", "statefulsets", "daemonsets", "jobs", "services"} {
		list.APIResources = append(list.APIResources, metav1.APIResource{Name: res + "/tap", Namespaced: res != "namespaces", Kind: "Tap", Verbs: []string{"watch"}})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}
