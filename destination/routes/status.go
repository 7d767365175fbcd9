package routes

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

type parentStatus struct {
	ref parentRef
	v   verdict
}

func condition(typ string, ok bool, reason, msg string, gen int64, old []any) map[string]any {
	status := "False"
	if ok {
		status = "True"
	}
	now := metav1.NewTime(time.Now()).UTC().Format(time.RFC3339)
	for _, o := range old { // keep lastTransitionTime while the status holds
		if m, _ := o.(map[string]any); m != nil && m["type"] == typ && m["status"] == status {
			if t, _ := m["lastTransitionTime"].(string); t != "" {
				now = t
			}
		}
	}
	return map[string]any{"type": typ, "status": status, "reason": reason, "message": msg, "observedGeneration": gen, "lastTransitionTime": now}
}

// writeStatus replaces weft's entries in status.parents[] (other
// controllers' entries are kept) and updates the status subresource when
// they changed.
func (c *Controller) writeStatus(ctx context.Context, gvr schema.GroupVersionResource, u *unstructured.Unstructured, ps []parentStatus) error {
	oldParents, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
	var keep, mine []any
	oldMine := map[string][]any{}
	for _, p := range oldParents {
		m, _ := p.(map[string]any)
		if m == nil || m["controllerName"] != c.cfg.ControllerName {
			keep = append(keep, p)
			continue
		}
		ref, _ := json.Marshal(m["parentRef"])
		conds, _ := m["conditions"].([]any)
		oldMine[string(ref)] = conds
	}
	gen := u.GetGeneration()
	for _, p := range ps {
		var ref map[string]any
		b, _ := json.Marshal(p.ref)
		_ = json.Unmarshal(b, &ref)
		refKey, _ := json.Marshal(ref)
		old := oldMine[string(refKey)]
		mine = append(mine, map[string]any{
			"parentRef":      ref,
			"controllerName": c.cfg.ControllerName,
			"conditions": []any{
				condition("Accepted", p.v.accepted, p.v.acceptedReason, p.v.acceptedMessage, gen, old),
				condition("ResolvedRefs", p.v.resolved, p.v.resolvedReason, p.v.resolvedMessage, gen, old),
			},
		})
	}
	parents := append(keep, mine...)
	if reflect.DeepEqual(normalize(parents), normalize(oldParents)) {
		return nil
	}
	cp := u.DeepCopy()
	if err := unstructured.SetNestedSlice(cp.Object, normalize(parents), "status", "parents"); err != nil {
		return fmt.Errorf("set status.parents: %w", err)
	}
	if _, err := c.cfg.Dynamic.Resource(gvr).Namespace(u.GetNamespace()).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update %s %s/%s status: %w", gvr.Resource, u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// normalize round-trips through JSON so int64 and float64 compare alike.
func normalize(v []any) []any {
	b, _ := json.Marshal(v)
	var out []any
	_ = json.Unmarshal(b, &out)
	return out
}
