package injector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/weftmesh/weft/internal/annotations"
)

// Mode selects what InjectManifests does to workloads.
type Mode int

// Modes.
const (
	// Annotate adds weft.io/inject: enabled and lets the webhook inject.
	Annotate Mode = iota
	// Manual renders the full sidecar with Inject, as the webhook would.
	Manual
	// Uninject removes everything weft added, by either mode.
	Uninject
)

// Outcome is what happened to one document or List item.
type Outcome struct {
	Kind, Name string
	Changed    bool
	Reason     string
}

func (o Outcome) String() string {
	verb := "skipped"
	if o.Changed {
		verb = "changed"
	}
	return fmt.Sprintf("%s/%s %s: %s", strings.ToLower(o.Kind), o.Name, verb, o.Reason)
}

// docSeparator splits a YAML stream on "---" lines.
var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// InjectManifests processes a YAML stream document by document. Documents it
// does not change are written back exactly as they were.
func InjectManifests(in []byte, mode Mode, v Values) (out []byte, outcomes []Outcome, err error) {
	docs := docSeparator.Split(string(in), -1)
	var buf bytes.Buffer
	first := true
	for i, doc := range docs {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		changed, res, err := processDoc([]byte(doc), mode, v)
		if err != nil {
			return nil, outcomes, fmt.Errorf("document %d: %w", i+1, err)
		}
		outcomes = append(outcomes, res...)
		if !first {
			buf.WriteString("---\n")
		}
		first = false
		if changed == nil {
			buf.WriteString(strings.TrimLeft(doc, "\n"))
			if !strings.HasSuffix(doc, "\n") {
				buf.WriteByte('\n')
			}
			continue
		}
		buf.Write(changed)
	}
	return buf.Bytes(), outcomes, nil
}

// processDoc returns the new YAML of a document, or nil if unchanged.
func processDoc(doc []byte, mode Mode, v Values) ([]byte, []Outcome, error) {
	var obj map[string]any
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		return nil, nil, fmt.Errorf("parse YAML: %w", err)
	}
	if obj == nil {
		return nil, nil, nil
	}
	var outcomes []Outcome
	changed := false
	if kind, _ := obj["kind"].(string); strings.HasSuffix(kind, "List") {
		items, _ := obj["items"].([]any)
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			o, err := processObject(m, mode, v)
			if err != nil {
				return nil, outcomes, err
			}
			outcomes = append(outcomes, o)
			changed = changed || o.Changed
		}
	} else {
		o, err := processObject(obj, mode, v)
		if err != nil {
			return nil, nil, err
		}
		outcomes = append(outcomes, o)
		changed = o.Changed
	}
	if !changed {
		return nil, outcomes, nil
	}
	out, err := yaml.Marshal(obj)
	return out, outcomes, err
}

// templatePath is where each workload kind keeps its pod template.
var templatePath = map[string][]string{
	"Pod":         nil,
	"Deployment":  {"spec", "template"},
	"StatefulSet": {"spec", "template"},
	"DaemonSet":   {"spec", "template"},
	"ReplicaSet":  {"spec", "template"},
	"Job":         {"spec", "template"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template"},
}

func processObject(obj map[string]any, mode Mode, v Values) (Outcome, error) {
	kind, _ := obj["kind"].(string)
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	o := Outcome{Kind: kind, Name: name}
	if kind == "Namespace" {
		return namespaceOutcome(obj, mode, o), nil
	}
	path, ok := templatePath[kind]
	if !ok {
		o.Reason = "not a workload"
		return o, nil
	}
	tmpl := obj
	for _, p := range path {
		next, ok := tmpl[p].(map[string]any)
		if !ok {
			return o, fmt.Errorf("%s/%s: no %s", strings.ToLower(kind), name, strings.Join(path, "."))
		}
		tmpl = next
	}
	switch mode {
	case Annotate:
		return annotateTemplate(tmpl, o), nil
	case Manual:
		return injectTemplate(tmpl, v, o)
	default:
		return uninjectTemplate(tmpl, o)
	}
}

func namespaceOutcome(obj map[string]any, mode Mode, o Outcome) Outcome {
	ann := annotationsOf(obj, mode != Uninject)
	switch {
	case mode == Uninject && ann[annotations.Inject] != nil:
		delete(ann, annotations.Inject)
		o.Changed, o.Reason = true, "removed weft.io/inject"
	case mode == Uninject:
		o.Reason = "not annotated"
	case ann[annotations.Inject] == annotations.Enabled:
		o.Reason = "already annotated"
	default:
		ann[annotations.Inject] = annotations.Enabled
		o.Changed, o.Reason = true, "annotated weft.io/inject=enabled (pods created in it are injected)"
	}
	return o
}

// annotationsOf returns obj.metadata.annotations, creating it if create.
func annotationsOf(obj map[string]any, create bool) map[string]any {
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		if !create {
			return map[string]any{}
		}
		meta = map[string]any{}
		obj["metadata"] = meta
	}
	ann, _ := meta["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
		if create {
			meta["annotations"] = ann
		}
	}
	return ann
}

func annotateTemplate(tmpl map[string]any, o Outcome) Outcome {
	if pod, err := templatePod(tmpl); err == nil {
		if d := Decide(pod, map[string]string{annotations.Inject: annotations.Enabled}); !d.Inject {
			o.Reason = d.Reason // already injected, hostNetwork, or explicitly disabled
			return o
		}
	}
	ann := annotationsOf(tmpl, true)
	if ann[annotations.Inject] == annotations.Enabled {
		o.Reason = "already annotated"
		return o
	}
	ann[annotations.Inject] = annotations.Enabled
	o.Changed, o.Reason = true, "annotated weft.io/inject=enabled (the webhook injects the proxy)"
	return o
}

func injectTemplate(tmpl map[string]any, v Values, o Outcome) (Outcome, error) {
	pod, err := templatePod(tmpl)
	if err != nil {
		return o, err
	}
	if d := Decide(pod, map[string]string{annotations.Inject: annotations.Enabled}); !d.Inject {
		o.Reason = d.Reason
		return o, nil
	}
	if _, err := Inject(pod, v); err != nil {
		return o, fmt.Errorf("%s/%s: %w", strings.ToLower(o.Kind), o.Name, err)
	}
	pod.Annotations[annotations.InjectedBy] = "cli"
	if err := setTemplatePod(tmpl, pod); err != nil {
		return o, err
	}
	o.Changed, o.Reason = true, "proxy injected"
	return o, nil
}

func uninjectTemplate(tmpl map[string]any, o Outcome) (Outcome, error) {
	pod, err := templatePod(tmpl)
	if err != nil {
		return o, err
	}
	if !RemoveProxy(pod) {
		o.Reason = "not injected or annotated"
		return o, nil
	}
	if err := setTemplatePod(tmpl, pod); err != nil {
		return o, err
	}
	o.Changed, o.Reason = true, "weft removed"
	return o, nil
}

// RemoveProxy removes the proxy, its init container, volumes and weft's
// annotations from pod; it reports whether anything was removed.
func RemoveProxy(pod *corev1.Pod) bool {
	removed := false
	keep := func(cs []corev1.Container) []corev1.Container {
		out := cs[:0]
		for _, c := range cs {
			if c.Name == annotations.ProxyContainer || c.Name == annotations.InitContainer {
				removed = true
				continue
			}
			out = append(out, c)
		}
		return out
	}
	pod.Spec.InitContainers = keep(pod.Spec.InitContainers)
	pod.Spec.Containers = keep(pod.Spec.Containers)
	vols := pod.Spec.Volumes[:0]
	for _, vol := range pod.Spec.Volumes {
		if vol.Name == annotations.IdentityVolume || vol.Name == annotations.TokenVolume {
			removed = true
			continue
		}
		vols = append(vols, vol)
	}
	pod.Spec.Volumes = vols
	if restoreProbes(pod) {
		removed = true
	}
	for _, k := range []string{annotations.Inject, annotations.ProxyVersion, annotations.TrustRootSHA256, annotations.InjectedBy} {
		if _, ok := pod.Annotations[k]; ok {
			delete(pod.Annotations, k)
			removed = true
		}
	}
	return removed
}

// templatePod views a pod template (metadata + spec) as a Pod.
func templatePod(tmpl map[string]any) (*corev1.Pod, error) {
	raw, err := json.Marshal(tmpl)
	if err != nil {
		return nil, err
	}
	var pod corev1.Pod
	if err := json.Unmarshal(raw, &pod); err != nil {
		return nil, fmt.Errorf("decode pod template: %w", err)
	}
	return &pod, nil
}

// setTemplatePod writes a Pod's metadata and spec back into the template,
// keeping the template's other fields.
func setTemplatePod(tmpl map[string]any, pod *corev1.Pod) error {
	raw, err := json.Marshal(struct {
		Metadata any            `json:"metadata"`
		Spec     corev1.PodSpec `json:"spec"`
	}{pod.ObjectMeta, pod.Spec})
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	meta, _ := m["metadata"].(map[string]any)
	delete(meta, "creationTimestamp")
	if len(meta) == 0 {
		delete(m, "metadata")
		delete(tmpl, "metadata")
	}
	for k, val := range m {
		tmpl[k] = val
	}
	return nil
}
