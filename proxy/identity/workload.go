package identity

import (
	"context"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// EnvWorkloadAPIAddr, when set, makes the proxy take its SVID and trust
// bundle from a SPIFFE Workload API (SPIRE agent) instead of the weft
// identity service, e.g. "unix:///run/spire/sockets/agent.sock".
const EnvWorkloadAPIAddr = "WEFT_PROXY_IDENTITY_WORKLOAD_API_ADDR"

// NewWorkloadSource connects to the SPIFFE Workload API at addr and waits
// (bounded by ctx) for the first SVID. The result is an x509svid.Source and
// an x509bundle.Source, usable by proxy/mtls like a Manager; Close it when
// done. It renews and rotates on its own.
func NewWorkloadSource(ctx context.Context, addr string) (*workloadapi.X509Source, error) {
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(addr)))
	if err != nil {
		return nil, fmt.Errorf("identity: workload API %s: %w", addr, err)
	}
	return src, nil
}
