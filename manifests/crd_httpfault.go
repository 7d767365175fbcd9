package manifests

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// HTTPFault identifies weft's fault-injection filter resource, referenced
// from HTTPRoute/GRPCRoute rules with
// `filters: [{type: ExtensionRef, extensionRef: {group: weft.io, kind: HTTPFault, name: …}}]`.
const (
	HTTPFaultGroup    = "weft.io"
	HTTPFaultVersion  = "v1alpha1"
	HTTPFaultKind     = "HTTPFault"
	HTTPFaultResource = "httpfaults"
)

func percentSchema() obj {
	return obj{"type": "integer", "format": "int32", "minimum": 0, "maximum": 100}
}

// HTTPFaultCRD is the httpfaults.weft.io CustomResourceDefinition.
func HTTPFaultCRD() ([]byte, error) {
	abort := obj{
		"type":        "object",
		"description": "Answer percent of requests without sending them: with httpStatus, or with grpcCode (HTTP 200 and grpc-status) for gRPC.",
		"required":    []string{"percent"},
		"properties": obj{
			"percent":    percentSchema(),
			"httpStatus": obj{"type": "integer", "format": "int32", "minimum": 200, "maximum": 599},
			"grpcCode":   obj{"type": "integer", "format": "int32", "minimum": 0, "maximum": 16},
		},
		"x-kubernetes-validations": []obj{{"rule": "has(self.httpStatus) != has(self.grpcCode)", "message": "set exactly one of httpStatus and grpcCode"}},
	}
	delay := obj{
		"type":        "object",
		"description": "Hold percent of requests for fixedDelay before sending them.",
		"required":    []string{"percent", "fixedDelay"},
		"properties":  obj{"percent": percentSchema(), "fixedDelay": obj{"type": "string", "pattern": durationPattern}},
	}
	crd := obj{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   obj{"name": HTTPFaultResource + "." + HTTPFaultGroup, "labels": obj{"weft.io/control-plane-component": "crds"}},
		"spec": obj{
			"group": HTTPFaultGroup,
			"scope": "Namespaced",
			"names": obj{"plural": HTTPFaultResource, "singular": "httpfault", "kind": HTTPFaultKind},
			"versions": []obj{{
				"name": HTTPFaultVersion, "served": true, "storage": true,
				"schema": obj{"openAPIV3Schema": obj{
					"type": "object", "required": []string{"spec"},
					"properties": obj{"spec": obj{
						"type":        "object",
						"description": "Fault injection for the HTTPRoute or GRPCRoute rules whose ExtensionRef filter names this resource.",
						"properties":  obj{"abort": abort, "delay": delay},
					}},
				}},
			}},
		},
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		return nil, fmt.Errorf("render HTTPFault CRD: %w", err)
	}
	return out, nil
}

// CRDsWithGatewayAPI is CRDs plus HTTPFault and the Gateway API route CRDs
// not named in skip.
func CRDsWithGatewayAPI(skip map[string]bool) ([]byte, error) {
	out, err := CRDs()
	if err != nil {
		return nil, err
	}
	fault, err := HTTPFaultCRD()
	if err != nil {
		return nil, err
	}
	gw, err := GatewayAPICRDs(skip)
	if err != nil {
		return nil, err
	}
	out = append(out, "---\n"...)
	out = append(out, fault...)
	return append(out, gw...), nil
}
