package mtls

import (
	"errors"
	"sync/atomic"
)

// Failure reasons counted by Dialer and Terminator.
const (
	ReasonConnect  = "connect"       // TCP connect failed (dialer)
	ReasonTimeout  = "timeout"       // connect, handshake or header timed out
	ReasonNoSVID   = "no_svid"       // our own certificate is not available (yet)
	ReasonIdentity = "peer_identity" // the peer's certificate did not verify or named another identity
	ReasonALPN     = "alpn"          // the server did not negotiate weft's ALPN (not a weft proxy)
	ReasonTLS      = "tls"           // any other handshake failure
	ReasonHeader   = "header"        // the connection header could not be written or read
)

var reasons = [...]string{ReasonConnect, ReasonTimeout, ReasonNoSVID, ReasonIdentity, ReasonALPN, ReasonTLS, ReasonHeader}

// Stats is a snapshot of handshake counters.
type Stats struct {
	// Handshakes counts successful mTLS handshakes, full or resumed.
	Handshakes uint64
	// Resumed counts the successful handshakes that resumed a session.
	Resumed uint64
	// Plain counts plaintext connections (Dialer: endpoints without identity).
	Plain uint64
	// Failures counts failed mTLS connections by reason (Reason* constants);
	// every reason is present.
	Failures map[string]uint64
}

type counters struct {
	handshakes, resumed, plain atomic.Uint64
	failures                   [len(reasons)]atomic.Uint64
}

func (c *counters) fail(reason string) {
	for i, r := range reasons {
		if r == reason {
			c.failures[i].Add(1)
			return
		}
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{Handshakes: c.handshakes.Load(), Resumed: c.resumed.Load(), Plain: c.plain.Load(), Failures: make(map[string]uint64, len(reasons))}
	for i, r := range reasons {
		s.Failures[r] = c.failures[i].Load()
	}
	return s
}

// PeerIdentityError reports a peer certificate that did not verify against
// the trust bundle, or did not carry the expected identity.
type PeerIdentityError struct {
	// Expected describes what was required ("spiffe://td/ns/a/sa/b", or
	// "a member of spiffe://td"); Got is the presented identity, empty when
	// the certificate carried none.
	Expected, Got string
	// Unverified is true when the chain did not verify (untrusted root,
	// expired, unknown trust domain); false when it verified but named
	// another identity.
	Unverified bool
	Err        error
}

func (e *PeerIdentityError) Error() string {
	switch {
	case e.Got == "":
		return "peer certificate: " + e.Err.Error()
	case e.Unverified:
		return "peer certificate for " + e.Got + " does not verify: " + e.Err.Error()
	}
	return "peer identity " + e.Got + " is not " + e.Expected + ": " + e.Err.Error()
}

func (e *PeerIdentityError) Unwrap() error { return e.Err }

// ErrNoSVID wraps failures to get our own certificate.
var ErrNoSVID = errors.New("own certificate unavailable")
