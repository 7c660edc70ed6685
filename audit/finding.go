package audit

import "slices"

// Finding is one check's verdict on one port.
type Finding struct {
	Port    int  `json:"port"`
	Service Kind `json:"service"`
	// ID names the check; it is stable across releases (README lists
	// them). One port has at most one finding per ID.
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Seen is what the server did, in a sentence: its words quoted and
	// clipped, never a Go error.
	Seen string `json:"seen"`
	// Fix is what to do about a problem; empty when there is none.
	Fix string `json:"fix,omitempty"`
	// Shadowserver marks the exposure Shadowserver's scans report: an
	// IMAP or POP3 port open without STARTTLS/STLS.
	Shadowserver bool `json:"shadowserver,omitempty"`
	// TestSSL is the id testssl.sh gives the same check, where it has one.
	TestSSL string `json:"testssl,omitempty"`
}

// The check ids, in the order a port's findings are listed.
const (
	IDService        = "service"            // what answers on the port
	IDImplicitTLS    = "implicit-tls"       // a TLS port really speaks TLS
	IDSoftware       = "greeting-software"  // software and version disclosed
	IDPreauth        = "preauth"            // IMAP PREAUTH greeting
	IDStartTLS       = "starttls"           // STARTTLS/STLS offered and working
	IDLoginBeforeTLS = "login-before-tls"   // a login offered before TLS
	IDPlaintextLogin = "plaintext-login"    // a throwaway login before TLS refused unchecked
	IDInjection      = "starttls-injection" // CVE-2011-0411: commands across the boundary
	IDCapsTLS        = "caps-tls"           // capabilities under TLS
	IDTLS10          = "tls-1.0"
	IDTLS11          = "tls-1.1"
	IDTLS12          = "tls-1.2"
	IDTLS13          = "tls-1.3"
	IDCipherAEAD     = "cipher-aead-fs" // TLS 1.2: ECDHE with AEAD accepted
	IDCipherCBC      = "cipher-cbc"     // TLS 1.2: CBC (no AEAD) accepted
	IDCipherNoFS     = "cipher-no-fs"   // TLS 1.2: RSA key exchange (no forward secrecy) accepted
	IDCipher3DES     = "cipher-3des"
	IDCipherRC4      = "cipher-rc4"
	IDCertChain      = "cert-chain"
	IDCertName       = "cert-name"
	IDCertNameNoSNI  = "cert-name-no-sni"
	IDCertExpiry     = "cert-expiry"
	IDCertKey        = "cert-key"
	IDCertSignature  = "cert-signature"
	IDOCSPMustStaple = "ocsp-must-staple"
	IDALPN           = "alpn"   // the protocol's own ALPN accepted
	IDALPACA         = "alpaca" // a foreign ALPN (http/1.1) refused
	IDGuard          = "guard"  // --probe-guard: wrong logins slowed down
)

// checkOrder lists the ids in report order, each with testssl.sh's id for
// the same check where it has one.
var checkOrder = []struct{ id, testssl string }{
	{IDService, "service"},
	{IDImplicitTLS, ""},
	{IDSoftware, ""},
	{IDPreauth, ""},
	{IDStartTLS, ""},
	{IDLoginBeforeTLS, ""},
	{IDPlaintextLogin, ""},
	{IDInjection, ""},
	{IDCapsTLS, ""},
	{IDTLS10, "TLS1"},
	{IDTLS11, "TLS1_1"},
	{IDTLS12, "TLS1_2"},
	{IDTLS13, "TLS1_3"},
	{IDCipherAEAD, ""},
	{IDCipherCBC, ""},
	{IDCipherNoFS, ""},
	{IDCipher3DES, "cipherlist_3DES_IDEA"},
	{IDCipherRC4, "RC4"},
	{IDCertChain, "cert_chain_of_trust"},
	{IDCertName, "cert_trust"},
	{IDCertNameNoSNI, "cert_commonName_wo_SNI"},
	{IDCertExpiry, "cert_expirationStatus"},
	{IDCertKey, "cert_keySize"},
	{IDCertSignature, "cert_signatureAlgorithm"},
	{IDOCSPMustStaple, "cert_mustStapleExtension"},
	{IDALPN, "ALPN"},
	{IDALPACA, ""},
	{IDGuard, ""},
}

// IDs returns every check id in report order.
func IDs() []string {
	ids := make([]string, len(checkOrder))
	for i, c := range checkOrder {
		ids[i] = c.id
	}
	return ids
}

func checkIndex(id string) int {
	return slices.IndexFunc(checkOrder, func(c struct{ id, testssl string }) bool { return c.id == id })
}

// testsslID is testssl.sh's id for the check, or "".
func testsslID(id string) string {
	if i := checkIndex(id); i >= 0 {
		return checkOrder[i].testssl
	}
	return ""
}

// sortFindings puts a port's findings in report order.
func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int { return checkIndex(a.ID) - checkIndex(b.ID) })
}
