package tap

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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

// RequestHeader is the front-proxy configuration of the API server
// (ConfigMap kube-system/extension-apiserver-authentication): only
// connections whose client certificate chains to CAs and (when set) names
// one of AllowedNames may assert the user in UserHeaders and GroupHeaders.
type RequestHeader struct {
	CAs          *x509.CertPool
	AllowedNames []string
	// UserHeaders and GroupHeaders; empty means X-Remote-User and
	// X-Remote-Group.
	UserHeaders, GroupHeaders []string
}

// Handler serves the aggregated API. Authentication is the API server's;
// authorization is a SubjectAccessReview per tap request.
type Handler struct {
	Client kubernetes.Interface
	// Authn returns the current front-proxy configuration; nil (or a nil
	// result) refuses every request.
	Authn func() *RequestHeader
	// Merger returns the merger that taps t's pods, or an error saying why
	// tap cannot serve now (503) or t does not exist (ErrNotFound, 404).
	Merger func(ctx context.Context, t Target) (*Merger, error)
}

// ErrNotFound marks a tap target that does not exist or has no meshed pods.
var ErrNotFound = errors.New("not found")

// ServeHTTP routes discovery and tap requests.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, groups, err := h.authenticate(r)
	if err != nil {
		writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, err.Error())
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
	t, ok := ParsePath(p)
	if !ok {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound,
			"tap API: no such path "+r.URL.Path+": use POST /apis/"+Group+"/"+Version+"/watch/namespaces/NS/RESOURCE/NAME/tap")
		return
	}
	if r.Method != http.MethodPost {
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "tap requests are POST")
		return
	}
	if msg, err := h.authorize(r.Context(), user, groups, t); err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	} else if msg != "" {
		writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden, msg)
		return
	}
	h.tap(w, r, t)
}

// Path is where a client POSTs a tap of t. The watch/ prefix makes the API
// server authorize the verb watch on <resource>/tap, as the handler does.
func Path(t Target) string {
	return "/apis/" + Group + "/" + Version + "/watch/namespaces/" + t.Namespace + "/" + t.Resource + "/" + t.Name + "/tap"
}

// ParsePath reads a Path; a namespace is tapped as namespaces/NS in NS.
func ParsePath(p string) (Target, bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) != 9 || parts[0] != "apis" || parts[1] != Group || parts[2] != Version || parts[3] != "watch" ||
		parts[4] != "namespaces" || parts[8] != "tap" || parts[5] == "" || parts[7] == "" {
		return Target{}, false
	}
	t := Target{Namespace: parts[5], Resource: parts[6], Name: parts[7]}
	if !slices.Contains(slices.Collect(maps.Values(Resources)), t.Resource) || (t.Resource == "namespaces" && t.Name != t.Namespace) {
		return Target{}, false
	}
	return t, true
}

// authenticate reads the front-proxy identity from a verified client cert.
func (h *Handler) authenticate(r *http.Request) (string, []string, error) {
	var rh *RequestHeader
	if h.Authn != nil {
		rh = h.Authn()
	}
	if rh == nil || rh.CAs == nil {
		return "", nil, fmt.Errorf("tap API: the front-proxy CA is not loaded yet (ConfigMap kube-system/extension-apiserver-authentication)")
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", nil, fmt.Errorf("tap API: only the Kubernetes API server may call (no front-proxy client certificate)")
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: rh.CAs, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return "", nil, fmt.Errorf("tap API: front-proxy certificate: %w", err)
	}
	if len(rh.AllowedNames) > 0 && !slices.Contains(rh.AllowedNames, leaf.Subject.CommonName) {
		return "", nil, fmt.Errorf("tap API: front-proxy certificate %q is not an allowed name", leaf.Subject.CommonName)
	}
	userHeaders, groupHeaders := rh.UserHeaders, rh.GroupHeaders
	if len(userHeaders) == 0 {
		userHeaders = []string{"X-Remote-User"}
	}
	if len(groupHeaders) == 0 {
		groupHeaders = []string{"X-Remote-Group"}
	}
	var user string
	for _, hd := range userHeaders {
		if user = r.Header.Get(hd); user != "" {
			break
		}
	}
	if user == "" {
		return "", nil, fmt.Errorf("tap API: no user header (%s)", strings.Join(userHeaders, ", "))
	}
	var groups []string
	for _, hd := range groupHeaders {
		groups = append(groups, r.Header.Values(hd)...)
	}
	return user, groups, nil
}

// authorize asks the API server whether user may watch <resource>/tap; a
// non-empty message is the denial to show.
func (h *Handler) authorize(ctx context.Context, user string, groups []string, t Target) (string, error) {
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: user, Groups: groups,
		ResourceAttributes: &authzv1.ResourceAttributes{
			Namespace: t.Namespace, Verb: "watch", Group: Group, Version: Version,
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
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "tap request body: "+err.Error())
		return
	}
	obs, dur, err := req.observe()
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), dur)
	defer cancel()
	m, err := h.Merger(ctx, t)
	if errors.Is(err, ErrNotFound) {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, err.Error())
		return
	} else if err != nil {
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, err.Error())
		return
	}
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

// writeStatus answers with a metav1.Status, which client-go turns into an
// error carrying msg.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	st := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Message: msg, Reason: reason, Code: int32(code)}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(st)
}

func writeDiscovery(w http.ResponseWriter) {
	list := metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: Group + "/" + Version}
	for _, res := range []string{"namespaces", "pods", "deployments", "statefulsets", "daemonsets", "jobs", "services"} {
		list.APIResources = append(list.APIResources, metav1.APIResource{Name: res + "/tap", Namespaced: true, Kind: "Tap", Verbs: []string{"watch"}})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}
