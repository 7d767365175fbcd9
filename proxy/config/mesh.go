package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weftmesh/weft/proxy/identity"
	"github.com/weftmesh/weft/proxy/mtls"
)

// Destination service defaults.
const (
	// DefaultDestinationName is the SPIFFE ID the destination service's
	// proxy must present when identity is on.
	DefaultDestinationName = "spiffe://cluster.local/ns/weft/sa/weft-destination"
)

// Environment variables of the mesh features (identity, policy,
// destination) that the core reads itself.
const (
	EnvDestinationAddr     = Prefix + "DESTINATION_SVC_ADDR"
	EnvDestinationName     = Prefix + "DESTINATION_SVC_NAME"
	EnvDestinationContext  = Prefix + "DESTINATION_CONTEXT"
	EnvDestinationFailFast = Prefix + "OUTBOUND_FAILFAST_TIMEOUT"
	EnvDestinationSuffixes = Prefix + "DESTINATION_PROFILE_SUFFIXES"
	// EnvServiceAccount is the injector's spelling of the pod's
	// ServiceAccount; accepted when identity's WEFT_PROXY_POD_SERVICE_ACCOUNT
	// is unset.
	EnvServiceAccount = Prefix + "SERVICE_ACCOUNT"
)

// identityVars are the variables that only make sense with identity on:
// setting one of them without an identity source is a partial
// configuration.
var identityVars = []string{
	identity.EnvTokenFile, identity.EnvServiceName, identity.EnvTrustAnchors,
	identity.EnvTrustAnchorsFile, identity.EnvLocalName,
}

// parseMesh fills the identity, policy and destination fields.
func parseMesh(getenv func(string) string, c *Config) error {
	env := func(k string) string {
		v := strings.TrimSpace(getenv(k))
		if v == "" && k == identity.EnvPodServiceAccount {
			v = strings.TrimSpace(getenv(EnvServiceAccount))
		}
		return v
	}
	// Identity: on when an identity service or a Workload API is named,
	// off when explicitly disabled or nothing is configured.
	switch idc, err := identity.FromEnv(env); {
	case errors.Is(err, identity.ErrDisabled):
		c.IdentityDisabledExplicitly = true
	case env(identity.EnvServiceAddr) == "" && env(identity.EnvWorkloadAPIAddr) == "":
		for _, k := range identityVars {
			if env(k) != "" {
				return fmt.Errorf("%s: set %s (or %s) to enable identity, or %s=true", k, identity.EnvServiceAddr, identity.EnvWorkloadAPIAddr, identity.EnvDisabled)
			}
		}
	case err != nil:
		return err
	default:
		c.Identity = &idc
	}

	pol, err := mtls.PolicyFromEnv(env)
	if err != nil {
		return err
	}
	c.Policy = pol
	if c.Identity == nil && (pol.Default != mtls.AllUnauthenticated || len(pol.RequireIdentity) > 0) {
		return fmt.Errorf("%s=%s / %s=%q: needs identity (nothing could be authenticated): set %s or drop the policy",
			mtls.EnvDefaultPolicy, pol.Default, mtls.EnvPortsRequireIdentity, env(mtls.EnvPortsRequireIdentity), identity.EnvServiceAddr)
	}

	p := parser{getenv: getenv}
	p.str("DESTINATION_SVC_ADDR", &c.DestinationAddr)
	p.str("DESTINATION_CONTEXT", &c.DestinationContext)
	p.duration("OUTBOUND_FAILFAST_TIMEOUT", &c.DestinationFailFast)
	if v, ok := p.get("DESTINATION_PROFILE_SUFFIXES"); ok {
		c.DestinationSuffixes = []string{}
		for _, s := range strings.Split(v, ",") {
			if s = strings.Trim(strings.TrimSpace(s), "."); s != "" {
				c.DestinationSuffixes = append(c.DestinationSuffixes, s)
			}
		}
	}
	name := DefaultDestinationName
	p.str("DESTINATION_SVC_NAME", &name)
	if p.err != nil {
		return p.err
	}
	if c.DestinationAddr != "" {
		if _, _, err := splitHostPort(c.DestinationAddr); err != nil {
			return fmt.Errorf("%s=%q: want host:port: %w", EnvDestinationAddr, c.DestinationAddr, err)
		}
		if c.Identity != nil {
			id, err := spiffeid.FromString(name)
			if err != nil {
				return fmt.Errorf("%s=%q: %w", EnvDestinationName, name, err)
			}
			c.DestinationName = id.String()
		}
	}
	if c.DestinationFailFast < 0 {
		return fmt.Errorf("%s: must not be negative, got %s", EnvDestinationFailFast, c.DestinationFailFast)
	}
	return nil
}
