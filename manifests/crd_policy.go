package manifests

import (
	"bytes"
	"fmt"

	"sigs.k8s.io/yaml"

	pol "github.com/weftmesh/weft/api/policy/v1alpha1"
)

// defaultPolicies are the values of default-inbound-policy and a Server's
// accessPolicy.
var defaultPolicies = []string{"all-unauthenticated", "all-authenticated", "cluster-unauthenticated", "cluster-authenticated", "deny", "audit"}

const (
	dnsLabelPattern = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	hostnamePattern = `^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// identityPattern: "*", a DNS-like "*.suffix", or a SPIFFE ID optionally
	// ending in "/*".
	identityPattern = `^(\*|\*\.[a-z0-9.-]+|spiffe://[a-zA-Z0-9._-]+(/[^/*\s]+)*(/\*)?)$`
)

// PolicyCRDs renders the policy.weft.io CustomResourceDefinitions as one
// YAML stream, in a stable order.
func PolicyCRDs() ([]byte, error) {
	var buf bytes.Buffer
	for _, c := range []struct {
		kind, plural, singular string
		short                  []string
		spec                   obj
		status                 bool
	}{
		{pol.KindServer, "servers", "server", []string{"srv"}, serverSpecSchema(), false},
		{pol.KindAuthorizationPolicy, "authorizationpolicies", "authorizationpolicy", []string{"authzpolicy"}, authorizationPolicySpecSchema(), true},
		{pol.KindMeshTLSAuthentication, "meshtlsauthentications", "meshtlsauthentication", []string{"meshtlsauthn"}, meshTLSSpecSchema(), true},
		{pol.KindNetworkAuthentication, "networkauthentications", "networkauthentication", []string{"netauthn", "networkauthn"}, networkSpecSchema(), false},
		{pol.KindHTTPRoute, "httproutes", "httproute", nil, httpRouteSpecSchema(), false},
	} {
		version := obj{
			"name": pol.Version, "served": true, "storage": true,
			"schema": obj{"openAPIV3Schema": obj{
				"type": "object", "required": []string{"spec"},
				"properties": statusProps(obj{"spec": c.spec}, c.status),
			}},
		}
		if c.status {
			version["subresources"] = obj{"status": obj{}}
		}
		names := obj{"plural": c.plural, "singular": c.singular, "kind": c.kind, "categories": []string{"policy", "weft"}}
		if len(c.short) > 0 {
			names["shortNames"] = c.short
		}
		crd := obj{
			"apiVersion": "apiextensions.k8s.io/v1",
			"kind":       "CustomResourceDefinition",
			"metadata":   obj{"name": c.plural + "." + pol.Group, "labels": obj{"weft.io/control-plane-component": "crds"}},
			"spec": obj{
				"group": pol.Group, "scope": "Namespaced", "names": names,
				"versions": []obj{version},
			},
		}
		out, err := yaml.Marshal(crd)
		if err != nil {
			return nil, fmt.Errorf("render %s CRD: %w", c.kind, err)
		}
		buf.WriteString("---\n")
		buf.Write(out)
	}
	return buf.Bytes(), nil
}

// PolicyCRDNames are the names of the policy CRDs (for uninstall).
func PolicyCRDNames() []string {
	return []string{"servers." + pol.Group, "authorizationpolicies." + pol.Group, "meshtlsauthentications." + pol.Group,
		"networkauthentications." + pol.Group, "httproutes." + pol.Group}
}

func statusProps(props obj, status bool) obj {
	if status {
		props["status"] = obj{"type": "object", "properties": obj{"conditions": obj{
			"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": []string{"type"},
			"items": obj{
				"type": "object", "required": []string{"type", "status", "lastTransitionTime", "reason", "message"},
				"properties": obj{
					"type":               obj{"type": "string", "maxLength": 316},
					"status":             obj{"type": "string", "enum": []string{"True", "False", "Unknown"}},
					"observedGeneration": obj{"type": "integer", "format": "int64", "minimum": 0},
					"lastTransitionTime": obj{"type": "string", "format": "date-time"},
					"reason":             obj{"type": "string", "maxLength": 1024},
					"message":            obj{"type": "string", "maxLength": 32768},
				},
			},
		}}}
	}
	return props
}

func rule(expr, msg string) obj { return obj{"rule": expr, "message": msg} }

func labelSelectorSchema() obj {
	return obj{
		"type": "object",
		"properties": obj{
			"matchLabels": obj{"type": "object", "additionalProperties": obj{"type": "string"}},
			"matchExpressions": obj{"type": "array", "items": obj{
				"type": "object", "required": []string{"key", "operator"},
				"properties": obj{
					"key":      obj{"type": "string", "minLength": 1},
					"operator": obj{"type": "string", "enum": []string{"In", "NotIn", "Exists", "DoesNotExist"}},
					"values":   obj{"type": "array", "items": obj{"type": "string"}},
				},
			}},
		},
	}
}

func serverSpecSchema() obj {
	return obj{
		"type":        "object",
		"description": "Selects a port on a set of pods. Fields match Linkerd's Server.",
		"required":    []string{"podSelector", "port"},
		"properties": obj{
			"podSelector": labelSelectorSchema(),
			"port": obj{
				"x-kubernetes-int-or-string": true, "anyOf": []obj{{"type": "integer"}, {"type": "string"}},
				"description": "a container port number (1-65535) or name (an IANA service name, at most 15 characters)",
				"x-kubernetes-validations": []obj{rule(
					`type(self) == int ? (self >= 1 && self <= 65535) : (size(self) <= 15 && self.matches('`+dnsLabelPattern+`'))`,
					"port must be a number from 1 to 65535 or a port name of at most 15 lowercase letters, digits and '-'")},
			},
			"proxyProtocol": obj{"type": "string", "enum": []string{"unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", "TLS"}, "default": "unknown"},
			"accessPolicy":  obj{"type": "string", "enum": defaultPolicies, "default": "deny", "description": "what a request no AuthorizationPolicy allows gets"},
		},
	}
}

func refSchema(rules ...obj) obj {
	s := obj{
		"type": "object", "required": []string{"kind", "name"},
		"properties": obj{
			"group":     obj{"type": "string", "maxLength": 253},
			"kind":      obj{"type": "string", "minLength": 1, "maxLength": 63},
			"name":      obj{"type": "string", "minLength": 1, "maxLength": 253},
			"namespace": obj{"type": "string", "maxLength": 63, "pattern": dnsLabelPattern},
		},
	}
	if len(rules) > 0 {
		s["x-kubernetes-validations"] = rules
	}
	return s
}

func authorizationPolicySpecSchema() obj {
	return obj{
		"type":        "object",
		"description": "Allows clients accepted by all requiredAuthenticationRefs to reach targetRef. Fields match Linkerd's AuthorizationPolicy.",
		"required":    []string{"targetRef"},
		"properties": obj{
			"targetRef": refSchema(rule(
				`(self.kind == 'Server' && self.group == 'policy.weft.io') || (self.kind == 'HTTPRoute' && (self.group == 'policy.weft.io' || self.group == 'gateway.networking.k8s.io')) || (self.kind == 'Namespace' && self.group == '')`,
				"targetRef must be a Server (group policy.weft.io), an HTTPRoute (group policy.weft.io or gateway.networking.k8s.io) or a Namespace (group \"\")"),
				rule(`!has(self.__namespace__) || self.kind == 'Namespace'`, "targetRef.namespace is not allowed: a policy targets objects in its own namespace")),
			"requiredAuthenticationRefs": obj{"type": "array", "maxItems": 16, "items": refSchema(rule(
				`(self.group == 'policy.weft.io' && (self.kind == 'MeshTLSAuthentication' || self.kind == 'NetworkAuthentication')) || (self.group == '' && self.kind == 'ServiceAccount')`,
				"requiredAuthenticationRefs entries must be a MeshTLSAuthentication or NetworkAuthentication (group policy.weft.io) or a ServiceAccount (group \"\")"))},
		},
	}
}

func meshTLSSpecSchema() obj {
	return obj{
		"type":        "object",
		"description": "Accepts mTLS clients by identity. Fields match Linkerd's MeshTLSAuthentication; identities are SPIFFE IDs.",
		"x-kubernetes-validations": []obj{rule(`has(self.identities) != has(self.identityRefs)`,
			"set exactly one of identities or identityRefs")},
		"properties": obj{
			"identities": obj{"type": "array", "minItems": 1, "items": obj{"type": "string", "pattern": identityPattern,
				"description": `"*", a SPIFFE ID (spiffe://cluster.local/ns/demo/sa/web) or a prefix ending in "/*"`}},
			"identityRefs": obj{"type": "array", "minItems": 1, "items": refSchema(rule(
				`self.group == '' && (self.kind == 'ServiceAccount' || self.kind == 'Namespace')`,
				"identityRefs entries must be a ServiceAccount or a Namespace (group \"\")"))},
		},
	}
}

func networkSpecSchema() obj {
	ipOrCIDR := `isCIDR(self) || isIP(self)`
	return obj{
		"type":        "object",
		"description": "Accepts clients by source network. Fields match Linkerd's NetworkAuthentication.",
		"required":    []string{"networks"},
		"properties": obj{
			"networks": obj{"type": "array", "minItems": 1, "maxItems": 64, "items": obj{
				"type": "object", "required": []string{"cidr"},
				"properties": obj{
					"cidr": obj{"type": "string", "maxLength": 64, "x-kubernetes-validations": []obj{rule(ipOrCIDR, "cidr must be a CIDR such as 10.0.0.0/8 or fd00::/8, or an address")}},
					"except": obj{"type": "array", "maxItems": 64, "items": obj{"type": "string", "maxLength": 64,
						"x-kubernetes-validations": []obj{rule(ipOrCIDR, "except entries must be CIDRs or addresses")}}},
				},
			}},
		},
	}
}

func httpRouteSpecSchema() obj {
	match := obj{
		"type": "object",
		"properties": obj{
			"path": obj{"type": "object", "properties": obj{
				"type":  obj{"type": "string", "enum": []string{pol.PathMatchExact, pol.PathMatchPathPrefix, pol.PathMatchRegularExpression}, "default": pol.PathMatchPathPrefix},
				"value": obj{"type": "string", "maxLength": 1024, "default": "/"},
			}, "x-kubernetes-validations": []obj{rule(`!has(self.value) || self.type == 'RegularExpression' || self.value.startsWith('/')`, "path.value must start with '/'")}},
			"headers": obj{"type": "array", "maxItems": 16, "items": obj{
				"type": "object", "required": []string{"name", "value"},
				"properties": obj{
					"type":  obj{"type": "string", "enum": []string{"Exact", "RegularExpression"}, "default": "Exact"},
					"name":  obj{"type": "string", "minLength": 1, "maxLength": 256, "pattern": `^[A-Za-z0-9!#$%&'*+\-.^_` + "`" + `|~]+$`},
					"value": obj{"type": "string", "maxLength": 4096},
				},
			}},
			"method": obj{"type": "string", "enum": []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}},
		},
	}
	return obj{
		"type":        "object",
		"description": "Per-route rules for the Servers in parentRefs (Gateway API HTTPRoute shape, as Linkerd's policy HTTPRoute).",
		"properties": obj{
			"parentRefs": obj{"type": "array", "maxItems": 32, "items": obj{
				"type": "object", "required": []string{"name"},
				"properties": obj{
					"group":       obj{"type": "string", "default": pol.Group},
					"kind":        obj{"type": "string", "default": pol.KindServer, "enum": []string{pol.KindServer, "Service"}},
					"namespace":   obj{"type": "string", "pattern": dnsLabelPattern},
					"name":        obj{"type": "string", "minLength": 1, "maxLength": 253},
					"sectionName": obj{"type": "string", "maxLength": 253},
					"port":        obj{"type": "integer", "format": "int32", "minimum": 1, "maximum": 65535},
				},
			}},
			"hostnames": obj{"type": "array", "maxItems": 16, "items": obj{"type": "string", "maxLength": 253, "pattern": hostnamePattern}},
			"rules": obj{"type": "array", "maxItems": 16, "items": obj{
				"type": "object",
				"properties": obj{
					"matches": obj{"type": "array", "maxItems": 8, "items": match},
				},
				"x-kubernetes-preserve-unknown-fields": true,
			}},
		},
	}
}
