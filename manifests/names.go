package manifests

import "github.com/weftmesh/weft/internal/annotations"

// Names of the control-plane objects in the control-plane namespace. The
// ServiceAccount, Service and Deployment of a component share its name.
const (
	IdentityName     = "weft-identity"
	DestinationName  = "weft-destination"
	InjectorName     = "weft-proxy-injector"
	ConfigName       = "weft-config"
	TrustRootsName   = "weft-identity-trust-roots"
	IssuerSecretName = "weft-identity-issuer"
	InjectorTLSName  = "weft-injector-tls"
)

// Keys inside the ConfigMaps and Secrets above.
const (
	// ConfigValuesKey in weft-config holds Values as JSON (injector.ValuesKey).
	ConfigValuesKey = "values"
	// TrustRootsKey in weft-identity-trust-roots holds the anchor bundle.
	TrustRootsKey = "ca-bundle.crt"
)

// Control-plane ports (docs/development.md).
const (
	identityGRPCPort    = 8080
	identityAdminPort   = 9990
	destinationGRPCPort = 8086
	destinationAdmin    = 9996
	injectorPort        = 8443
	injectorAdminPort   = 9995
	injectorServicePort = 443
	injectorPath        = "/inject"
	injectorTLSDir      = "/var/run/weft/tls"
	controllerUID       = 2103
)

// Labels every rendered object carries (uninstall and version select on them).
const (
	// LabelControlPlaneNS names the namespace of the install.
	LabelControlPlaneNS = annotations.ControlPlaneNS
	// LabelComponent names the component (identity, destination,
	// proxy-injector, crds).
	LabelComponent = annotations.ControlPlaneComp
)

// ClusterName is the name of a cluster-scoped object of the install in
// namespace ns, e.g. weft-weft-identity: unique per control-plane namespace.
func ClusterName(ns, name string) string { return "weft-" + ns + "-" + trimWeft(name) }

func trimWeft(name string) string {
	if len(name) > 5 && name[:5] == "weft-" {
		return name[5:]
	}
	return name
}
