package mtls_test

import (
	"context"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"

	"github.com/weftmesh/weft/proxy/identity"
	"github.com/weftmesh/weft/proxy/identity/identitytest"
	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/target"
)

// fakeAgent is a SPIFFE Workload API server (what a SPIRE agent serves)
// handing out one SVID.
type fakeAgent struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	svid   *x509svid.SVID
	anchor *x509.Certificate
}

func (a *fakeAgent) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	certs, key, err := a.svid.MarshalRaw()
	if err != nil {
		return err
	}
	if err := stream.Send(&workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
		SpiffeId: a.svid.ID.String(), X509Svid: certs, X509SvidKey: key, Bundle: a.anchor.Raw,
	}}}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func startAgent(t *testing.T, svid *x509svid.SVID, anchor *x509.Certificate) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(gs, &fakeAgent{svid: svid, anchor: anchor})
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return "unix://" + sock
}

// The Workload API source plugs into Dialer and Terminator like a Manager.
func TestWorkloadAPISource(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	books, err := identity.NewWorkloadSource(ctx, startAgent(t, ca.SVID(t, booksID, time.Hour), ca.Anchor.Cert))
	if err != nil {
		t.Fatal(err)
	}
	defer books.Close()
	web, err := identity.NewWorkloadSource(ctx, startAgent(t, ca.SVID(t, webID, time.Hour), ca.Anchor.Cert))
	if err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	p := startPeer(t, books, books)
	d := &mtls.Dialer{SVIDs: web, Bundle: web, InboundPort: p.port()}
	c, err := d.Dial(ctx, endpoint(8080, booksID, target.HTTP2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := p.next(t)
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.sc.Close()
	if a.sc.ClientID().String() != webID {
		t.Fatalf("client id %s", a.sc.ClientID())
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := identity.NewWorkloadSource(short, "unix:///nonexistent/agent.sock"); err == nil {
		t.Fatal("no agent: no error")
	}
}
