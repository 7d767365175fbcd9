package testapp

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/e2e/demo/serve"
)

// MutatedByLabel is the label the webhook adds to every pod it admits, with value MutatedByValue.
const (
	MutatedByLabel = "weft.io/mutated-by"
	MutatedByValue = "testapp"
)

// WebhookConfig configures ServeWebhook.
type WebhookConfig struct {
	Addr     string // listen address, e.g. ":8443"
	CertFile string // PEM serving certificate (chain); required
	KeyFile  string // PEM private key; required
}

// NewWebhookHandler returns the mutating webhook's handler: POST /mutate takes an
// admission.k8s.io/v1 AdmissionReview of a pod and allows it with a JSONPatch adding
// MutatedByLabel; GET /healthz reports ready.
func NewWebhookHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", &serve.Health{})
	mux.HandleFunc("POST /mutate", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
		if err != nil {
			http.Error(w, fmt.Sprintf("read review: %v", err), http.StatusBadRequest)
			return
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, fmt.Sprintf("decode AdmissionReview: %v (request present: %t)", err, review.Request != nil), http.StatusBadRequest)
			return
		}
		review.Response = Mutate(review.Request)
		review.Request = nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&review)
	})
	return mux
}

// Mutate answers one admission request: pods get MutatedByLabel, anything else is allowed as is.
func Mutate(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Kind.Kind != "Pod" {
		return resp
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusBadRequest,
			Message: fmt.Sprintf("decode pod: %v", err)}
		return resp
	}
	var patch []map[string]any
	if pod.Labels == nil {
		patch = append(patch, map[string]any{"op": "add", "path": "/metadata/labels", "value": map[string]string{}})
	}
	// RFC 6901: "/" in a key is written "~1".
	patch = append(patch, map[string]any{"op": "add",
		"path": "/metadata/labels/" + strings.ReplaceAll(MutatedByLabel, "/", "~1"), "value": MutatedByValue})
	raw, _ := json.Marshal(patch) // a slice of maps of strings cannot fail to encode
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = raw, &pt
	slog.Info("mutated pod", "namespace", req.Namespace, "name", req.Name, "generateName", pod.GenerateName)
	return resp
}

// ServeWebhook serves NewWebhookHandler over TLS on cfg.Addr until ctx is done.
func ServeWebhook(ctx context.Context, cfg WebhookConfig) error {
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("load serving certificate %s / %s: %w", cfg.CertFile, cfg.KeyFile, err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	return serve.HTTPListener(ctx, tln, NewWebhookHandler(), 5*time.Second)
}
