// Package manifests renders weft's Kubernetes manifests: the CRDs and the
// control plane. Output is deterministic (golden-tested) except generated keys.
package manifests

import (
	"fmt"

	"sigs.k8s.io/yaml"

	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
)

// conditionDepth is how deep nested all/any/not conditions are validated
// field by field. OpenAPI schemas in CRDs cannot recurse; deeper levels are
// accepted as objects and validated by the destination service, which reports
// errors on the profile.
const conditionDepth = 3

const durationPattern = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`

type obj = map[string]any

// ServiceProfileCRD is the serviceprofiles.weft.io CustomResourceDefinition.
func ServiceProfileCRD() ([]byte, error) {
	crd := obj{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   obj{"name": sp.Resource + "." + sp.Group, "labels": obj{"weft.io/control-plane-component": "crds"}},
		"spec": obj{
			"group": sp.Group,
			"scope": "Namespaced",
			"names": obj{"plural": sp.Resource, "singular": "serviceprofile", "kind": sp.Kind, "shortNames": []string{"sp"}},
			"versions": []obj{{
				"name": sp.Version, "served": true, "storage": true,
				"schema": obj{"openAPIV3Schema": obj{
					"type": "object", "required": []string{"spec"},
					"properties": obj{"spec": profileSpecSchema()},
				}},
			}},
		},
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		return nil, fmt.Errorf("render ServiceProfile CRD: %w", err)
	}
	return out, nil
}

func profileSpecSchema() obj {
	return obj{
		"type":        "object",
		"description": "A ServiceProfile's name is the fully qualified authority it applies to (e.g. books.demo.svc.cluster.local). Fields match Linkerd's ServiceProfile v1alpha2.",
		"properties": obj{
			"routes": obj{"type": "array", "items": routeSchema()},
			"retryBudget": obj{
				"type":     "object",
				"required": []string{"retryRatio", "minRetriesPerSecond", "ttl"},
				"properties": obj{
					"retryRatio":          obj{"type": "number", "format": "float", "minimum": 0},
					"minRetriesPerSecond": obj{"type": "integer", "format": "int32", "minimum": 0},
					"ttl":                 obj{"type": "string", "pattern": durationPattern},
				},
			},
			"dstOverrides": obj{"type": "array", "items": obj{
				"type":     "object",
				"required": []string{"authority", "weight"},
				"properties": obj{
					"authority": obj{"type": "string", "minLength": 1},
					"weight":    obj{"x-kubernetes-int-or-string": true, "anyOf": []obj{{"type": "integer"}, {"type": "string"}}},
				},
			}},
			"opaquePorts": obj{"type": "array", "items": obj{"type": "string", "pattern": `^[0-9]+(-[0-9]+)?$`}},
		},
	}
}

func routeSchema() obj {
	return obj{
		"type":     "object",
		"required": []string{"name", "condition"},
		"properties": obj{
			"name":            obj{"type": "string", "minLength": 1},
			"condition":       requestMatchSchema(conditionDepth),
			"responseClasses": obj{"type": "array", "items": responseClassSchema()},
			"isRetryable":     obj{"type": "boolean"},
			"timeout":         obj{"type": "string", "pattern": durationPattern},
		},
	}
}

func responseClassSchema() obj {
	return obj{
		"type":     "object",
		"required": []string{"condition"},
		"properties": obj{
			"condition": responseMatchSchema(conditionDepth),
			"isFailure": obj{"type": "boolean"},
		},
	}
}

// requestMatchSchema validates a request condition depth levels deep.
func requestMatchSchema(depth int) obj {
	props := obj{
		"pathRegex": obj{"type": "string", "minLength": 1},
		"method":    obj{"type": "string", "pattern": `^[A-Za-z]+$`},
	}
	addCombinators(props, depth, requestMatchSchema)
	return matchObject(props)
}

// responseMatchSchema validates a response condition depth levels deep.
func responseMatchSchema(depth int) obj {
	code := func() obj { return obj{"type": "integer", "format": "int32", "minimum": 100, "maximum": 599} }
	props := obj{
		"status": obj{"type": "object", "properties": obj{"min": code(), "max": code()}},
	}
	addCombinators(props, depth, responseMatchSchema)
	return matchObject(props)
}

// addCombinators adds all/any/not. Past the validated depth they accept any
// object; `not` also accepts Linkerd's CRD spelling (a list), which the
// destination service reads as the negation of all its items.
func addCombinators(props obj, depth int, next func(int) obj) {
	inner := obj{"type": "object", "x-kubernetes-preserve-unknown-fields": true}
	if depth > 1 {
		inner = next(depth - 1)
	}
	props["all"] = obj{"type": "array", "items": inner}
	props["any"] = obj{"type": "array", "items": inner}
	props["not"] = obj{"x-kubernetes-preserve-unknown-fields": true, "description": "a condition to negate (Linkerd's list form is also accepted)"}
}

func matchObject(props obj) obj {
	return obj{"type": "object", "minProperties": 1, "properties": props}
}
