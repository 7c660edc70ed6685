package audit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Key sizes below which a certificate's key is weak (RFC 9325 section 4.1).
const (
	minRSABits   = 2048
	minECDSABits = 256
)

// oidTLSFeature is the TLS feature extension (RFC 7633); the value 5,
// status_request, is OCSP must-staple.
var oidTLSFeature = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 24}

const certFix = "install a certificate from a CA clients trust (ACME: Let's Encrypt), for the name clients use, or put mailfront in front with one (it obtains and renews it)"

// certChecks judges the certificate the main connection got.
func (t *target) certChecks(state tls.ConnectionState) {
	if len(state.PeerCertificates) == 0 {
		t.add(IDCertChain, Critical, "the server sent no certificate", certFix)
		return
	}
	leaf := state.PeerCertificates[0]
	t.chain(leaf, state.PeerCertificates[1:])
	if seen, fix := nameMismatch(leaf, t.name); seen != "" {
		t.add(IDCertName, High, seen, fix)
	} else {
		t.add(IDCertName, OK, "the certificate is for "+t.name, "")
	}
	t.expiry(leaf)
	t.key(leaf)
	t.signature(leaf)
	t.mustStaple(leaf, state)
}

// chain verifies the chain against the roots, at a moment the leaf is
// valid (its last second, if it has expired), so that an expired
// certificate is cert-expiry's finding and not this one's.
func (t *target) chain(leaf *x509.Certificate, rest []*x509.Certificate) {
	inter := x509.NewCertPool()
	for _, c := range rest {
		inter.AddCert(c)
	}
	at := t.now
	switch {
	case at.After(leaf.NotAfter):
		at = leaf.NotAfter.Add(-time.Second)
	case at.Before(leaf.NotBefore):
		at = leaf.NotBefore.Add(time.Second)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: t.roots, Intermediates: inter, CurrentTime: at})
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var insecure x509.InsecureAlgorithmError
	switch {
	case err == nil:
		t.add(IDCertChain, OK, fmt.Sprintf("trusted: issued by %s, a chain of %d", issuerName(leaf), len(chains[0])), "")
	case errors.As(err, &unknown) && selfSigned(leaf):
		t.add(IDCertChain, Critical, "not trusted: self-signed ("+issuerName(leaf)+")", certFix+"; with a private CA, check with --ca FILE")
	case errors.As(err, &unknown):
		t.add(IDCertChain, Critical, "not trusted: issued by "+issuerName(leaf)+", which no trusted root vouches for (or an intermediate is missing)",
			certFix+"; send the intermediate certificates too; with a private CA, check with --ca FILE")
	case errors.As(err, &insecure):
		t.add(IDCertChain, Critical, "not trusted: signed with an algorithm clients refuse ("+insecure.Error()+")", certFix)
	case errors.As(err, &invalid):
		t.add(IDCertChain, Critical, "not trusted: "+invalidReason(invalid), certFix)
	default:
		t.add(IDCertChain, Critical, "not trusted: the chain does not verify", certFix)
	}
}

func invalidReason(e x509.CertificateInvalidError) string {
	switch e.Reason {
	case x509.NotAuthorizedToSign:
		return "a certificate in the chain is not a CA"
	case x509.IncompatibleUsage:
		return "the certificate is not for TLS servers (extended key usage)"
	case x509.TooManyIntermediates:
		return "too many intermediates"
	case x509.NameConstraintsWithoutSANs, x509.CANotAuthorizedForThisName, x509.CANotAuthorizedForExtKeyUsage:
		return "a CA in the chain may not issue it (constraints)"
	}
	return "the chain does not verify (" + e.Detail + ")"
}

// expiry judges the validity period: expired or not yet valid is
// critical; less than a third of the lifetime left (when ACME clients
// renew) is medium, whatever the lifetime, so that short-lived
// certificates are judged as fairly as year-long ones.
func (t *target) expiry(leaf *x509.Certificate) {
	left := leaf.NotAfter.Sub(t.now)
	date := leaf.NotAfter.UTC().Format("2006-01-02")
	switch {
	case left < 0:
		t.add(IDCertExpiry, Critical, fmt.Sprintf("expired %s ago (%s)", days(-left), date), "renew the certificate, and automate renewal (ACME), or put mailfront in front")
	case t.now.Before(leaf.NotBefore):
		t.add(IDCertExpiry, Critical, "not valid before "+leaf.NotBefore.UTC().Format("2006-01-02 15:04 UTC"), "check the server's clock and the certificate")
	case left < leaf.NotAfter.Sub(leaf.NotBefore)/3:
		t.add(IDCertExpiry, Medium, fmt.Sprintf("expires in %s (%s): less than a third of its lifetime left, when renewal should have happened", days(left), date),
			"check that renewal works")
	default:
		t.add(IDCertExpiry, OK, fmt.Sprintf("expires in %s (%s)", days(left), date), "")
	}
}

// days says a duration in whole days, or hours under two days, or
// minutes under two hours.
func days(d time.Duration) string {
	switch {
	case d < 2*time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func (t *target) key(leaf *x509.Certificate) {
	const fix = "issue a certificate for an ECDSA P-256 or RSA 2048-bit (or larger) key"
	switch k := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		sev := OK
		if k.N.BitLen() < minRSABits {
			sev = High
		}
		t.add(IDCertKey, sev, fmt.Sprintf("RSA %d bits", k.N.BitLen()), fixIf(sev, fix))
	case *ecdsa.PublicKey:
		bits := k.Curve.Params().BitSize
		sev := OK
		if bits < minECDSABits {
			sev = High
		}
		t.add(IDCertKey, sev, fmt.Sprintf("ECDSA %s", k.Curve.Params().Name), fixIf(sev, fix))
	case ed25519.PublicKey:
		t.add(IDCertKey, OK, "Ed25519", "")
	default:
		t.add(IDCertKey, High, "a "+leaf.PublicKeyAlgorithm.String()+" key, which clients no longer accept", fix)
	}
}

func (t *target) signature(leaf *x509.Certificate) {
	alg := leaf.SignatureAlgorithm
	switch alg {
	case x509.MD2WithRSA, x509.MD5WithRSA:
		t.add(IDCertSignature, Critical, "signed with "+alg.String()+", which is broken", "reissue the certificate with SHA-256")
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1:
		t.add(IDCertSignature, Medium, "signed with "+alg.String()+", which clients refuse", "reissue the certificate with SHA-256")
	default:
		t.add(IDCertSignature, OK, "signed with "+alg.String(), "")
	}
}

// mustStaple checks OCSP must-staple (RFC 7633) against the handshake: a
// certificate that demands a staple and a server that sends none fail in
// the clients that enforce it. Without the extension there is no finding.
func (t *target) mustStaple(leaf *x509.Certificate, state tls.ConnectionState) {
	for _, ext := range leaf.Extensions {
		if !ext.Id.Equal(oidTLSFeature) {
			continue
		}
		var features []int
		if _, err := asn1.Unmarshal(ext.Value, &features); err != nil || !slices.Contains(features, 5) {
			return
		}
		if len(state.OCSPResponse) == 0 {
			t.add(IDOCSPMustStaple, High, "the certificate demands an OCSP staple (must-staple) and the server sends none",
				"turn OCSP stapling on, or reissue the certificate without must-staple")
			return
		}
		t.add(IDOCSPMustStaple, OK, "must-staple, and the server staples an OCSP response", "")
		return
	}
}

func fixIf(sev Severity, fix string) string {
	if sev.problem() {
		return fix
	}
	return ""
}

// selfSigned says whether leaf signed itself. A self-signed server
// certificate is seldom a CA (certtool's, as Courier's postinst makes,
// says CA:FALSE), so the signature is checked without the constraints
// CheckSignatureFrom applies to a parent.
func selfSigned(leaf *x509.Certificate) bool {
	return bytes.Equal(leaf.RawIssuer, leaf.RawSubject) &&
		leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
}

// nameMismatch says why leaf is not for name, and what to do; "" when it
// is. A certificate that names it only in its subject's common name, with
// no subject alternative name, is not for it: RFC 6125 clients (Go,
// browsers) no longer read the common name, and the operator must hear
// that, not "for localhost, not localhost".
func nameMismatch(leaf *x509.Certificate, name string) (seen, fix string) {
	if leaf.VerifyHostname(name) == nil {
		return "", ""
	}
	if cn := leaf.Subject.CommonName; cn != "" && len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 {
		asSAN := *leaf
		asSAN.DNSNames = []string{cn}
		if strings.EqualFold(cn, name) || asSAN.VerifyHostname(name) == nil {
			return "the certificate names " + name + " only in its subject's common name, with no subject alternative name: clients that follow RFC 6125 (Go, browsers) refuse it",
				"reissue the certificate with " + name + " as a subject alternative name (every ACME certificate has one), or put mailfront in front with one (it obtains and renews it)"
		}
	}
	return "the certificate is for " + certNames(leaf) + ", not " + name, certFix
}

// certNames lists the names a certificate is for.
func certNames(c *x509.Certificate) string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName+" (common name only)")
	}
	if len(names) == 0 {
		return "no name"
	}
	if len(names) > 5 {
		names = append(names[:5], fmt.Sprintf("and %d more", len(names)-5))
	}
	return strings.Join(names, ", ")
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return quote(c.Issuer.CommonName)
	}
	return quote(c.Issuer.String())
}
