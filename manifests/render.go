package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// object is a typed Kubernetes object with apiVersion and kind set.
type object interface{}

// Objects returns the control-plane objects of v with c, in apply order:
// namespace, identities and RBAC, configuration and key material, Services,
// Deployments, PodDisruptionBudgets, and the webhook last so that no pod is
// sent to the injector before it exists. mesh adds the proxy to each
// control-plane pod template.
func objects(v Values, c *Certs, mesh meshFunc) ([]object, error) {
	v.TrustAnchorsPEM = string(c.TrustAnchorsPEM)
	if err := v.Validate(); err != nil {
		return nil, err
	}
	cfg, err := configMap(&v)
	if err != nil {
		return nil, err
	}
	out := []object{namespace(&v)}
	for _, comp := range components(&v) {
		out = append(out, serviceAccount(&v, comp))
	}
	out = append(out, rbac(&v)...)
	out = append(out, cfg, trustRoots(&v, c), issuerSecret(&v, c), injectorTLS(&v, c))
	comps := components(&v)
	for _, comp := range comps {
		out = append(out, service(&v, comp))
	}
	for _, comp := range comps {
		d, err := deployment(&v, comp, mesh)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if v.HA {
		for _, comp := range comps {
			out = append(out, pdb(&v, comp))
		}
	}
	out = append(out, webhook(&v, c))
	return out, nil
}

// meshFunc adds the proxy to a control-plane pod.
type meshFunc func(pod *corev1.Pod, v *Values) error

// marshalAll renders objs as one YAML stream, each document starting with
// "---". Output is deterministic: keys are sorted, lists keep their order.
func marshalAll(objs []object) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := marshal(o)
		if err != nil {
			return nil, err
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// marshal turns a typed object into YAML without the noise typed structs
// carry: status and null fields (creationTimestamp) are dropped.
func marshal(o object) ([]byte, error) {
	j, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("marshal %T: %w", o, err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, fmt.Errorf("unmarshal %T: %w", o, err)
	}
	delete(m, "status")
	dropNulls(m)
	out, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("yaml %T: %w", o, err)
	}
	return out, nil
}

func dropNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if val == nil {
				delete(t, k)
				continue
			}
			dropNulls(val)
		}
	case []any:
		for _, val := range t {
			dropNulls(val)
		}
	}
}
