package injector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/internal/annotations"
)

// maxReviewBytes bounds an AdmissionReview body (the apiserver caps requests
// at 3 MiB; pods are far smaller).
const maxReviewBytes = 3 << 20

// NamespaceAnnotations returns a namespace's annotations.
type NamespaceAnnotations interface {
	Annotations(ctx context.Context, namespace string) (map[string]string, error)
}

// ValuesSource returns the current install values.
type ValuesSource interface {
	Values() (Values, error)
}

// Webhook serves AdmissionReviews for pod creation.
type Webhook struct {
	Namespaces NamespaceAnnotations
	Values     ValuesSource
	Logger     *slog.Logger
	// Observe, when non-nil, is told the outcome of each review
	// ("injected", "skipped", "denied", "error").
	Observe func(outcome string)
}

// ServeHTTP implements http.Handler.
func (wh *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
	if err != nil || len(body) > maxReviewBytes {
		http.Error(w, "request body unreadable or larger than 3 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("not an AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	resp := wh.review(r.Context(), review.Request)
	resp.UID = review.Request.UID
	out, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func (wh *Webhook) observe(outcome string) {
	if wh.Observe != nil {
		wh.Observe(outcome)
	}
}

// review decides and, if injecting, returns the patch. A pod is never
// blocked by a fault of the injector (it is admitted un-injected, loudly); it
// is refused only when its own annotations are invalid.
func (wh *Webhook) review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	log := wh.Logger.With("namespace", req.Namespace, "name", req.Name)
	if req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create {
		wh.observe("skipped")
		return allow
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		wh.observe("error")
		log.Error("decode pod", "err", err)
		allow.Warnings = []string{"weft: pod not injected: " + err.Error()}
		return allow
	}
	nsAnn, err := wh.Namespaces.Annotations(ctx, req.Namespace)
	if err != nil {
		wh.observe("error")
		log.Error("read namespace", "err", err)
		allow.Warnings = []string{"weft: pod not injected: " + err.Error()}
		return allow
	}
	d := Decide(&pod, nsAnn)
	if !d.Inject {
		wh.observe("skipped")
		log.Debug("not injecting", "reason", d.Reason)
		return allow
	}
	values, err := wh.Values.Values()
	if err != nil {
		wh.observe("error")
		log.Error("read install values", "err", err)
		allow.Warnings = []string{"weft: pod not injected: " + err.Error()}
		return allow
	}
	patch, err := PodPatch(&pod, nsAnn, values, "webhook")
	if err != nil {
		wh.observe("denied")
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid,
			Message: "weft: " + err.Error(),
		}}
	}
	pt := admissionv1.PatchTypeJSONPatch
	allow.Patch, allow.PatchType = patch, &pt
	wh.observe("injected")
	log.Info("injected", "reason", d.Reason)
	return allow
}

// PodPatch injects a copy of pod and returns the JSON patch from pod to it.
func PodPatch(pod *corev1.Pod, nsAnnotations map[string]string, v Values, injectedBy string) ([]byte, error) {
	before, err := json.Marshal(pod)
	if err != nil {
		return nil, fmt.Errorf("encode pod: %w", err)
	}
	mutated := pod.DeepCopy()
	MergeNamespaceConfig(mutated, nsAnnotations)
	if _, err := Inject(mutated, v); err != nil {
		return nil, err
	}
	mutated.Annotations[annotations.InjectedBy] = injectedBy
	after, err := json.Marshal(mutated)
	if err != nil {
		return nil, fmt.Errorf("encode injected pod: %w", err)
	}
	ops, err := jsonpatch.CreatePatch(before, after)
	if err != nil {
		return nil, fmt.Errorf("compute patch: %w", err)
	}
	return json.Marshal(ops)
}
