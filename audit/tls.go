package audit

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// allSuites are every TLS 1.0-1.2 suite Go speaks, the insecure ones
// included, so that a probe finds what the server accepts rather than
// what Go would offer by default.
var allSuites = suitesWhere(func(*tls.CipherSuite) bool { return true })

// suitesWhere lists the TLS 1.2 suites (secure and insecure) for which keep
// is true.
func suitesWhere(keep func(*tls.CipherSuite) bool) []uint16 {
	var ids []uint16
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if slices.Contains(s.SupportedVersions, tls.VersionTLS12) && keep(s) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// suiteProbes are the TLS 1.2 suite classes checked, each offered alone.
var suiteProbes = []struct {
	id     string
	suites []uint16
	good   bool // accepted is the good outcome
	sev    Severity
	what   string
	fix    string
}{
	{IDCipherAEAD, suitesWhere(func(s *tls.CipherSuite) bool {
		return strings.HasPrefix(s.Name, "TLS_ECDHE_") && (strings.Contains(s.Name, "_GCM_") || strings.Contains(s.Name, "CHACHA20"))
	}), true, Medium, "ECDHE with AEAD (GCM, ChaCha20-Poly1305)", "offer ECDHE with AES-GCM or ChaCha20-Poly1305 in TLS 1.2 (RFC 9325 section 4.2)"},
	{IDCipherCBC, suitesWhere(func(s *tls.CipherSuite) bool {
		return strings.Contains(s.Name, "_CBC_") && !strings.Contains(s.Name, "3DES")
	}),
		false, Low, "CBC suites without AEAD", "offer only AEAD suites in TLS 1.2 (RFC 9325 section 4.2)"},
	{IDCipherNoFS, suitesWhere(func(s *tls.CipherSuite) bool { return strings.HasPrefix(s.Name, "TLS_RSA_") }),
		false, Medium, "RSA key exchange, without forward secrecy", "offer only ECDHE key exchange: with RSA key exchange, whoever gets the key later decrypts every recorded session"},
	{IDCipher3DES, suitesWhere(func(s *tls.CipherSuite) bool { return strings.Contains(s.Name, "3DES") }),
		false, Medium, "3DES (64-bit blocks, Sweet32)", "turn 3DES off"},
	{IDCipherRC4, suitesWhere(func(s *tls.CipherSuite) bool { return strings.Contains(s.Name, "RC4") }),
		false, High, "RC4 (RFC 7465 prohibits it)", "turn RC4 off"},
}

// tlsConfig is the probes' base: every version and suite Go has, SNI as
// configured, no verification during the handshake (certChecks verifies
// the chain and name afterwards, against the configured roots, so that a
// bad certificate is a finding rather than a failed check).
func (t *target) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         t.sni,
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS10,
		CipherSuites:       allSuites,
	}
}

// probeResult is one handshake probe's outcome.
type probeResult struct {
	state tls.ConnectionState
	err   error
	ran   bool // the handshake was attempted (the preamble worked)
}

// ok is a completed handshake.
func (p probeResult) ok() bool { return p.ran && p.err == nil }

// probe runs one handshake with cfg and closes the connection.
func (t *target) probe(cfg *tls.Config) probeResult {
	c, state, hs, err := t.openTLS(t.dialogue(), cfg)
	if err == nil {
		c.close()
	}
	return probeResult{state: state, err: err, ran: hs}
}

// timedOut says whether a probe got no answer at all, which says nothing
// about what the server accepts.
func (p probeResult) timedOut() bool {
	var ne net.Error
	return errors.As(p.err, &ne) && ne.Timeout()
}

// tlsChecks runs every TLS check once the main handshake has worked.
func (t *target) tlsChecks(d dialogue, state tls.ConnectionState) {
	t.certChecks(state)
	versions := []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13}
	results := make([]probeResult, len(versions))
	fns := []func(){func() { t.noSNI(state) }}
	if !t.kind.implicitTLS() {
		fns = append(fns, func() { d.inject(t) })
	}
	for i, v := range versions {
		fns = append(fns, func() {
			cfg := t.tlsConfig()
			cfg.MinVersion, cfg.MaxVersion = v, v
			results[i] = t.probe(cfg)
		})
	}
	if p := d.alpn(); p != "" {
		fns = append(fns, func() { t.alpn(p) }, func() { t.alpaca() })
	}
	t.parallel(fns...)
	t.judgeVersions(versions, results)
	if results[2].ok() {
		t.suiteChecks()
	}
}

func versionName(v uint16) string { return tls.VersionName(v) }

var versionIDs = map[uint16]string{tls.VersionTLS10: IDTLS10, tls.VersionTLS11: IDTLS11, tls.VersionTLS12: IDTLS12, tls.VersionTLS13: IDTLS13}

// judgeVersions gives one finding per version.
func (t *target) judgeVersions(versions []uint16, results []probeResult) {
	offered := map[uint16]bool{}
	for i, v := range versions {
		offered[v] = results[i].ok()
	}
	for i, v := range versions {
		r, id, name := results[i], versionIDs[v], versionName(v)
		switch {
		case !r.ran || r.timedOut():
			t.add(id, Warn, name+" could not be tried: "+describe(r.err, t.step), "")
		case v < tls.VersionTLS12 && r.ok():
			t.add(id, High, name+" offered: RFC 8996 retired it; it is what an attacker downgrades clients to",
				"turn TLS 1.0 and 1.1 off (Dovecot: ssl_min_protocol = TLSv1.2), or put mailfront in front (TLS 1.2 and 1.3 only)")
		case v < tls.VersionTLS12:
			t.add(id, OK, name+" not offered", "")
		case r.ok():
			t.add(id, OK, name+" offered", "")
		case v == tls.VersionTLS13:
			t.add(id, Low, "TLS 1.3 not offered: "+describe(r.err, t.step), "offer TLS 1.3 (RFC 9325 section 3.1.1), or put mailfront in front")
		case offered[tls.VersionTLS13]:
			t.add(id, Info, "TLS 1.2 not offered, TLS 1.3 only: clients older than TLS 1.3 cannot connect", "")
		default:
			t.add(id, High, "neither TLS 1.2 nor TLS 1.3 offered: "+describe(r.err, t.step), "offer TLS 1.2 and 1.3, or put mailfront in front")
		}
	}
}

// suiteChecks offers each class of TLS 1.2 suites alone.
func (t *target) suiteChecks() {
	results := make([]probeResult, len(suiteProbes))
	fns := make([]func(), len(suiteProbes))
	for i, sp := range suiteProbes {
		fns[i] = func() {
			cfg := t.tlsConfig()
			cfg.MinVersion, cfg.MaxVersion, cfg.CipherSuites = tls.VersionTLS12, tls.VersionTLS12, sp.suites
			results[i] = t.probe(cfg)
		}
	}
	t.parallel(fns...)
	for i, sp := range suiteProbes {
		r := results[i]
		switch {
		case !r.ran || r.timedOut():
			t.add(sp.id, Warn, "TLS 1.2 with "+sp.what+" could not be tried: "+describe(r.err, t.step), "")
		case r.ok() && sp.good:
			t.add(sp.id, OK, "TLS 1.2 with "+sp.what+" accepted: "+tls.CipherSuiteName(r.state.CipherSuite), "")
		case r.ok():
			t.add(sp.id, sp.sev, "TLS 1.2 with "+sp.what+" accepted: "+tls.CipherSuiteName(r.state.CipherSuite), sp.fix)
		case sp.good:
			t.add(sp.id, sp.sev, "TLS 1.2 with "+sp.what+" refused", sp.fix)
		default:
			t.add(sp.id, OK, "TLS 1.2 with "+sp.what+" refused", "")
		}
	}
}

// noSNI checks the certificate a client gets without SNI: many mail
// clients send none, after STARTTLS especially.
func (t *target) noSNI(main tls.ConnectionState) {
	if t.sni == "" {
		return // no SNI is what the main connection did
	}
	cfg := t.tlsConfig()
	cfg.ServerName = ""
	r := t.probe(cfg)
	switch {
	case !r.ran || r.timedOut():
		t.add(IDCertNameNoSNI, Warn, "a handshake without SNI could not be tried: "+describe(r.err, t.step), "")
	case r.err != nil:
		t.add(IDCertNameNoSNI, Medium, "a client without SNI gets no TLS: "+describe(r.err, t.step),
			"serve a default certificate for "+t.name+" to clients that send no SNI")
	case r.state.PeerCertificates[0].VerifyHostname(t.name) == nil:
		t.add(IDCertNameNoSNI, OK, "a client without SNI gets a certificate for "+t.name, "")
	case len(main.PeerCertificates) > 0 && r.state.PeerCertificates[0].Equal(main.PeerCertificates[0]):
		// What is wrong with its name is cert-name's finding, once.
		t.add(IDCertNameNoSNI, OK, "a client without SNI gets the same certificate as with SNI", "")
	default:
		seen, _ := nameMismatch(r.state.PeerCertificates[0], t.name)
		t.add(IDCertNameNoSNI, Medium, "a client without SNI gets another certificate: "+seen,
			"make the certificate for "+t.name+" the default one, served without SNI")
	}
}

// alpn checks that a client offering the protocol's own ALPN id connects.
func (t *target) alpn(proto string) {
	cfg := t.tlsConfig()
	cfg.NextProtos = []string{proto}
	r := t.probe(cfg)
	switch {
	case !r.ran || r.timedOut():
		t.add(IDALPN, Warn, "ALPN could not be tried: "+describe(r.err, t.step), "")
	case r.err != nil:
		t.add(IDALPN, Medium, fmt.Sprintf("a client offering ALPN %q is refused: %s", proto, describe(r.err, t.step)),
			fmt.Sprintf("accept ALPN %q (RFC 7301), or put mailfront in front", proto))
	case r.state.NegotiatedProtocol == proto:
		t.add(IDALPN, OK, fmt.Sprintf("ALPN %q accepted and selected", proto), "")
	default:
		t.add(IDALPN, OK, fmt.Sprintf("ALPN %q accepted (the server does not select one)", proto), "")
	}
}

// alpaca checks that a client asking for HTTP is refused: a server that
// takes it lets an attacker redirect a browser's TLS session to this
// port (the ALPACA attack).
func (t *target) alpaca() {
	cfg := t.tlsConfig()
	cfg.NextProtos = []string{"http/1.1"}
	r := t.probe(cfg)
	const fix = "refuse TLS clients whose ALPN lacks this protocol (strict ALPN), or put mailfront in front"
	switch {
	case !r.ran || r.timedOut():
		t.add(IDALPACA, Warn, "ALPN could not be tried: "+describe(r.err, t.step), "")
	case r.err != nil:
		t.add(IDALPACA, OK, "a client asking for http/1.1 is refused: "+describe(r.err, t.step), "")
	case r.state.NegotiatedProtocol == "http/1.1":
		t.add(IDALPACA, Medium, "the server selects ALPN http/1.1 on a mail port (ALPACA)", fix)
	default:
		t.add(IDALPACA, Low, "a client asking for http/1.1 gets a TLS session: a browser's connection can be redirected here (ALPACA)", fix)
	}
}
