package manifests

import (
	"bytes"
	"embed"
	"fmt"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// GatewayAPIVersion is the Gateway API release whose HTTPRoute and GRPCRoute
// CRDs (experimental channel: HTTPRoute retry is GEP-1731 experimental) are
// embedded in manifests/gatewayapi, unchanged from
// sigs.k8s.io/gateway-api@v1.6.3/config/crd/experimental (Apache-2.0, see
// gatewayapi/LICENSE). v1.7 needs Go 1.27.
const GatewayAPIVersion = "v1.6.3"

// GatewayAPIBundleAnnotation carries a Gateway API CRD's release.
const GatewayAPIBundleAnnotation = "gateway.networking.k8s.io/bundle-version"

// GatewayAPICRDNames are the CRDs weft renders with --gateway-api.
var GatewayAPICRDNames = []string{"httproutes.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io"}

//go:embed gatewayapi/*.yaml
var gatewayAPIFS embed.FS

// GatewayAPICRDs renders the embedded HTTPRoute and GRPCRoute CRDs, leaving
// out those named in skip (already installed at this or a newer release).
// Field descriptions are dropped so the objects fit kubectl's client-side
// apply annotation (the upstream HTTPRoute CRD is over 500 kB with them).
func GatewayAPICRDs(skip map[string]bool) ([]byte, error) {
	var buf bytes.Buffer
	for _, name := range GatewayAPICRDNames {
		if skip[name] {
			continue
		}
		file := "gatewayapi/gateway.networking.k8s.io_" + strings.TrimSuffix(name, ".gateway.networking.k8s.io") + ".yaml"
		raw, err := gatewayAPIFS.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read embedded %s: %w", file, err)
		}
		var crd map[string]any
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			return nil, fmt.Errorf("parse embedded %s: %w", file, err)
		}
		dropDescriptions(crd)
		if md, ok := crd["metadata"].(map[string]any); ok {
			md["labels"] = obj{"weft.io/control-plane-component": "crds"}
		}
		out, err := yaml.Marshal(crd)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", name, err)
		}
		buf.WriteString("---\n")
		buf.Write(out)
	}
	return buf.Bytes(), nil
}

// dropDescriptions removes OpenAPI "description" strings recursively (a
// property that is itself named description is an object and is kept).
func dropDescriptions(v any) {
	switch t := v.(type) {
	case map[string]any:
		if d, ok := t["description"].(string); ok && d != "" {
			delete(t, "description")
		}
		for _, c := range t {
			dropDescriptions(c)
		}
	case []any:
		for _, c := range t {
			dropDescriptions(c)
		}
	}
}

// NewerOrSameGatewayAPI reports whether an installed bundle version (e.g.
// "v1.7.0") is at least GatewayAPIVersion; unparsable versions count as newer
// so that an unknown install is left alone.
func NewerOrSameGatewayAPI(installed string) bool {
	a, okA := semver(installed)
	b, _ := semver(GatewayAPIVersion)
	if !okA {
		return true
	}
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}

func semver(s string) ([3]int, bool) {
	var out [3]int
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return out, false
		}
		out[i] = n
	}
	return out, true
}
