package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// validateCSR parses a DER certificate signing request and checks that it is
// signed by its own key, that the key is ECDSA P-256 or P-384, and that its only
// subject alternative name is want's URI.
func validateCSR(der []byte, want spiffeid.ID) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, &InvalidRequestError{Reason: fmt.Sprintf("parse CSR: %v", err)}
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, &InvalidRequestError{Reason: fmt.Sprintf("CSR signature: %v", err)}
	}
	key, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, &InvalidRequestError{Reason: fmt.Sprintf("CSR key is %T; want ECDSA P-256 or P-384", csr.PublicKey)}
	}
	if key.Curve != elliptic.P256() && key.Curve != elliptic.P384() {
		return nil, &InvalidRequestError{Reason: fmt.Sprintf("CSR curve %s; want P-256 or P-384", key.Curve.Params().Name)}
	}
	if n := len(csr.DNSNames) + len(csr.IPAddresses) + len(csr.EmailAddresses); n > 0 {
		return nil, &InvalidRequestError{Reason: "CSR may carry only the SPIFFE ID URI SAN; it also has DNS, IP or email SANs"}
	}
	if len(csr.URIs) != 1 {
		return nil, &InvalidRequestError{Reason: fmt.Sprintf("CSR has %d URI SANs; want exactly one", len(csr.URIs))}
	}
	got, err := spiffeid.FromURI(csr.URIs[0])
	if err != nil {
		return nil, &InvalidRequestError{Reason: fmt.Sprintf("CSR URI SAN %q: %v", csr.URIs[0], err)}
	}
	if got != want {
		return nil, &MismatchError{What: "CSR", Got: got.String(), Expected: want.String()}
	}
	return csr, nil
}
