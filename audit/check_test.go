package audit

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/testpki"
)

// pki is the tests' CA and the certificates they serve.
type pki struct {
	ca, other *testpki.CA
	good      tls.Certificate // localhost and 127.0.0.1, valid a day
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca := testpki.NewCA(t)
	return &pki{ca: ca, other: testpki.NewCA(t), good: ca.Leaf(t, "localhost", "127.0.0.1")}
}

// serverTLS is a TLS config serving cert with the given ALPN ids, and in
// TLS 1.2 only ECDHE with AEAD, as mailfront's own policy.
func serverTLS(cert tls.Certificate, alpn ...string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: alpn, CipherSuites: aeadSuites}
}

var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// check runs the audit against the given ports on loopback, with the
// certificate name localhost and the test CA as the only root.
func check(t *testing.T, p *pki, ports ...Port) *Report {
	t.Helper()
	return Run(context.Background(), Options{
		Host: "127.0.0.1", Name: "localhost", Ports: ports, Roots: p.ca.Pool(),
		StepTimeout: 3 * time.Second, Deadline: 20 * time.Second,
	})
}

// verdicts are a port's findings by id.
func verdicts(r *Report, port int) map[string]Finding {
	m := map[string]Finding{}
	for _, f := range r.Findings() {
		if f.Port == port {
			m[f.ID] = f
		}
	}
	return m
}

// wantVerdicts checks that the port has exactly the problems and warnings
// of want (ok and info may be in want too), and that every id of want
// has the severity want gives it.
func wantVerdicts(t *testing.T, r *Report, port int, want map[string]Severity) {
	t.Helper()
	got := verdicts(r, port)
	for id, sev := range want {
		f, ok := got[id]
		if !ok {
			t.Errorf("port %d %s: got no finding, want %s", port, id, sev)
			continue
		}
		if f.Severity != sev {
			t.Errorf("port %d %s: got %s (%s), want %s", port, id, f.Severity, f.Seen, sev)
		}
	}
	for id, f := range got {
		if _, listed := want[id]; !listed && (f.Severity.problem() || f.Severity == Warn) {
			t.Errorf("port %d %s: got %s (%s), want no problem", port, id, f.Severity, f.Seen)
		}
	}
	if t.Failed() {
		var b strings.Builder
		r.WriteText(&b)
		t.Logf("report:\n%s", b.String())
	}
}

// TestScripted runs the audit against scripted servers, one behaviour
// each, and checks the exact findings and the exit code.
func TestScripted(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	strict := func(proto string) *tls.Config { return serverTLS(p.good, proto) }
	expired, err := p.ca.Issue(testpki.NewKey(t), time.Now().Add(-50*time.Minute), time.Now().Add(-10*time.Minute), "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tls10 := strict("imap")
	tls10.MinVersion, tls10.MaxVersion, tls10.CipherSuites = tls.VersionTLS10, tls.VersionTLS10, nil
	cbcOnly := strict("imap")
	cbcOnly.MaxVersion = tls.VersionTLS12
	cbcOnly.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
	untrusted := serverTLS(p.other.Leaf(t, "localhost", "127.0.0.1"), "imap")

	cleanIMAP := script{proto: "imap", tls: strict("imap"), caps: []string{"LOGINDISABLED"}, capsTLS: []string{"AUTH=PLAIN"}}
	cleanPOP3 := script{proto: "pop3", tls: strict("pop3"), capsTLS: []string{"USER", "SASL PLAIN"}, user: "-ERR [AUTH] TLS required"}
	cleanSMTP := script{proto: "smtp", tls: serverTLS(p.good), capsTLS: []string{"AUTH PLAIN"}}
	with := func(s script, mod func(*script)) script { mod(&s); return s }

	tests := []struct {
		name string
		s    script
		kind Kind
		want map[string]Severity
		seen map[string]string // ids whose Seen must contain a text
		exit int
	}{
		{"imap clean", cleanIMAP, IMAP, map[string]Severity{IDStartTLS: OK, IDLoginBeforeTLS: OK, IDPlaintextLogin: OK, IDInjection: OK, IDPreauth: OK, IDTLS13: OK, IDALPN: OK, IDALPACA: OK, IDCertChain: OK}, nil, ExitClean},
		{"pop3 clean", cleanPOP3, POP3, map[string]Severity{IDStartTLS: OK, IDLoginBeforeTLS: OK, IDPlaintextLogin: OK, IDInjection: OK, IDCapsTLS: OK}, nil, ExitClean},
		{"submission clean", cleanSMTP, Submission, map[string]Severity{IDStartTLS: OK, IDLoginBeforeTLS: OK, IDInjection: OK, IDCapsTLS: OK}, nil, ExitClean},
		{"smtps clean", with(cleanSMTP, func(s *script) { s.implicit = true }), SMTPS, map[string]Severity{IDImplicitTLS: OK, IDCapsTLS: OK}, nil, ExitClean},
		{"imaps clean", with(cleanIMAP, func(s *script) { s.implicit = true; s.capsTLS = []string{"AUTH=PLAIN"} }), IMAPS, map[string]Severity{IDImplicitTLS: OK, IDCapsTLS: OK, IDCertNameNoSNI: OK}, nil, ExitClean},

		// CVE-2011-0411: the answer to a command sent with STARTTLS comes inside TLS.
		{"imap injection", with(cleanIMAP, func(s *script) { s.inject = true }), IMAP, map[string]Severity{IDInjection: Critical}, nil, ExitFailed},
		{"pop3 injection", with(cleanPOP3, func(s *script) { s.inject = true }), POP3, map[string]Severity{IDInjection: Critical}, nil, ExitFailed},
		{"smtp injection", with(cleanSMTP, func(s *script) { s.inject = true }), Submission, map[string]Severity{IDInjection: Critical}, nil, ExitFailed},

		{"imap AUTH=PLAIN before STARTTLS", with(cleanIMAP, func(s *script) { s.caps = []string{"AUTH=PLAIN"} }), IMAP,
			map[string]Severity{IDLoginBeforeTLS: High, IDPlaintextLogin: OK}, map[string]string{IDLoginBeforeTLS: "AUTH=PLAIN"}, ExitFailed},
		{"imap LOGINDISABLED with AUTH=LOGIN", with(cleanIMAP, func(s *script) { s.caps = []string{"LOGINDISABLED", "AUTH=LOGIN"} }), IMAP,
			map[string]Severity{IDLoginBeforeTLS: High}, nil, ExitFailed},
		{"pop3 USER before STLS", with(cleanPOP3, func(s *script) { s.caps = []string{"USER"} }), POP3, map[string]Severity{IDLoginBeforeTLS: High}, nil, ExitFailed},
		{"submission AUTH before STARTTLS", with(cleanSMTP, func(s *script) { s.caps = []string{"AUTH PLAIN LOGIN"} }), Submission,
			map[string]Severity{IDLoginBeforeTLS: Critical}, nil, ExitFailed},

		{"imap checks plaintext passwords", with(cleanIMAP, func(s *script) {
			s.caps = nil
			s.login = "NO [AUTHENTICATIONFAILED] Authentication failed."
		}), IMAP, map[string]Severity{IDLoginBeforeTLS: High, IDPlaintextLogin: Critical}, map[string]string{IDPlaintextLogin: "throwaway user"}, ExitFailed},
		{"imap bare NO", with(cleanIMAP, func(s *script) { s.caps = nil; s.login = "NO Login failed." }), IMAP,
			map[string]Severity{IDLoginBeforeTLS: High, IDPlaintextLogin: Critical}, nil, ExitFailed},
		{"imap BAD", with(cleanIMAP, func(s *script) { s.login = "BAD command unknown" }), IMAP, map[string]Severity{IDPlaintextLogin: OK}, nil, ExitClean},
		{"imap accepts anyone", with(cleanIMAP, func(s *script) { s.login = "OK logged in" }), IMAP, map[string]Severity{IDPlaintextLogin: Critical}, nil, ExitFailed},
		{"pop3 checks plaintext passwords after its failure delay", with(cleanPOP3, func(s *script) {
			s.caps, s.user, s.login, s.loginDelay = []string{"USER"}, "+OK", "-ERR [AUTH] Authentication failed.", 1100*time.Millisecond
		}), POP3, map[string]Severity{IDLoginBeforeTLS: High, IDPlaintextLogin: Critical}, map[string]string{IDPlaintextLogin: "failure delay"}, ExitFailed},
		{"pop3 refuses PASS for want of TLS", with(cleanPOP3, func(s *script) {
			s.user, s.login = "+OK", "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
		}), POP3, map[string]Severity{IDPlaintextLogin: OK}, nil, ExitClean},

		{"imap PREAUTH", script{proto: "imap", greeting: "* PREAUTH [CAPABILITY IMAP4rev1] logged in as anonymous"}, IMAP,
			map[string]Severity{IDPreauth: Critical, IDStartTLS: Warn}, nil, ExitFailed},
		{"imap without STARTTLS", script{proto: "imap", greeting: "* OK Dovecot ready.", login: "NO [AUTHENTICATIONFAILED] Authentication failed."}, IMAP,
			map[string]Severity{IDStartTLS: Critical, IDLoginBeforeTLS: High, IDPlaintextLogin: Critical, IDSoftware: Info}, map[string]string{IDStartTLS: "Shadowserver"}, ExitFailed},
		{"pop3 without STLS", script{proto: "pop3", greeting: "+OK Qpopper (version 4.1.0) at mail starting.", caps: []string{"USER"}, login: "-ERR [AUTH] Password supplied for \"x\" is incorrect."}, POP3,
			map[string]Severity{IDStartTLS: Critical, IDLoginBeforeTLS: High, IDPlaintextLogin: Critical, IDSoftware: Low}, map[string]string{IDSoftware: "Qpopper 4.1.0"}, ExitFailed},
		{"smtp without STARTTLS", script{proto: "smtp"}, SMTP, map[string]Severity{IDStartTLS: High}, nil, ExitFailed},
		{"imaps speaking plaintext", cleanIMAP, IMAPS, map[string]Severity{IDImplicitTLS: Critical, IDStartTLS: OK}, nil, ExitFailed},

		{"expired certificate", with(cleanIMAP, func(s *script) { s.tls = serverTLS(expired, "imap") }), IMAP,
			map[string]Severity{IDCertExpiry: Critical, IDCertChain: OK}, map[string]string{IDCertExpiry: "expired"}, ExitFailed},
		{"certificate for another name", with(cleanIMAP, func(s *script) { s.tls = serverTLS(p.ca.Leaf(t, "other.example"), "imap") }), IMAP,
			map[string]Severity{IDCertName: High, IDCertNameNoSNI: OK}, map[string]string{IDCertName: "other.example", IDCertNameNoSNI: "same certificate"}, ExitFailed},
		// What certtool makes for Courier's postinst: the name in the
		// common name only, and no SAN.
		{"certificate naming localhost in its common name only", with(cleanIMAP, func(s *script) {
			s.tls = serverTLS(leafWith(t, p.ca, testpki.NewKey(t), func(c *x509.Certificate) { c.DNSNames, c.IPAddresses = nil, nil }), "imap")
		}), IMAP, map[string]Severity{IDCertName: High, IDCertNameNoSNI: OK, IDCertChain: OK},
			map[string]string{IDCertName: "names localhost only in its subject's common name"}, ExitFailed},
		{"self-signed certificate that is no CA", with(cleanIMAP, func(s *script) { s.tls = serverTLS(selfSignedLeaf(t), "imap") }), IMAP,
			map[string]Severity{IDCertChain: Critical, IDCertName: OK}, map[string]string{IDCertChain: "self-signed"}, ExitFailed},
		{"untrusted certificate", with(cleanIMAP, func(s *script) { s.tls = untrusted }), IMAP, map[string]Severity{IDCertChain: Critical}, nil, ExitFailed},
		{"TLS 1.0 only", with(cleanIMAP, func(s *script) { s.tls = tls10 }), IMAP,
			map[string]Severity{IDTLS10: High, IDTLS11: OK, IDTLS12: High, IDTLS13: Low}, nil, ExitFailed},
		{"CBC-only TLS 1.2", with(cleanIMAP, func(s *script) { s.tls = cbcOnly }), IMAP,
			map[string]Severity{IDTLS12: OK, IDTLS13: Low, IDCipherAEAD: Medium, IDCipherCBC: Low, IDCipherNoFS: OK}, nil, ExitWarnings},
		{"ALPN ignored", with(cleanIMAP, func(s *script) { s.tls = serverTLS(p.good) }), IMAP, map[string]Severity{IDALPN: OK, IDALPACA: Low}, nil, ExitWarnings},
		{"must-staple without a staple", with(cleanIMAP, func(s *script) { s.tls = serverTLS(mustStapleLeaf(t, p.ca), "imap") }), IMAP,
			map[string]Severity{IDOCSPMustStaple: High}, nil, ExitFailed},
		{"RSA 1024", with(cleanIMAP, func(s *script) { s.tls = serverTLS(rsaLeaf(t, p.ca, 1024), "imap") }), IMAP,
			map[string]Severity{IDCertKey: High}, map[string]string{IDCertKey: "RSA 1024"}, ExitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, tt.s)
			r := check(t, p, f.at(tt.kind))
			wantVerdicts(t, r, f.port, tt.want)
			got := verdicts(r, f.port)
			for id, text := range tt.seen {
				if !strings.Contains(got[id].Seen, text) {
					t.Errorf("%s: got seen %q, want it to contain %q", id, got[id].Seen, text)
				}
			}
			if code := r.ExitCode(); code != tt.exit {
				t.Errorf("got exit %d, want %d", code, tt.exit)
			}
		})
	}
}

// mustStapleLeaf is a leaf whose TLS feature extension demands an OCSP
// staple (RFC 7633).
func mustStapleLeaf(t *testing.T, ca *testpki.CA) tls.Certificate {
	t.Helper()
	value, _ := asn1.Marshal([]int{5})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return leafWith(t, ca, key, func(c *x509.Certificate) {
		c.ExtraExtensions = []pkix.Extension{{Id: oidTLSFeature, Value: value}}
	})
}

// selfSignedLeaf is a certificate for localhost that signed itself and
// says it is no CA, as certtool's and openssl req -x509's often do.
func selfSignedLeaf(t *testing.T) tls.Certificate {
	t.Helper()
	return leafWith(t, nil, testpki.NewKey(t), func(c *x509.Certificate) {
		c.BasicConstraintsValid, c.IsCA = true, false
	})
}

// rsaLeaf is a leaf with an RSA key of the given size.
func rsaLeaf(t *testing.T, ca *testpki.CA, bits int) tls.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return leafWith(t, ca, key, func(*x509.Certificate) {})
}

// leafWith signs a leaf for localhost and 127.0.0.1 with ca (or with its
// own key when ca is nil), changed by mod.
func leafWith(t *testing.T, ca *testpki.CA, key crypto.Signer, mod func(*x509.Certificate)) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	mod(tmpl)
	if ca == nil {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key}
}

// TestRecognise: ports of no given kind are known by what they say.
func TestRecognise(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	servers := []struct {
		s    script
		kind Kind
		how  string
	}{
		{script{proto: "imap"}, IMAP, "its greeting"},
		{script{proto: "pop3"}, POP3, "its greeting"},
		{script{proto: "smtp"}, SMTP, "its greeting"},
		{script{proto: "imap", implicit: true, tls: serverTLS(p.good, "imap")}, IMAPS, "its TLS handshake and greeting"},
		{script{proto: "pop3", implicit: true, tls: serverTLS(p.good, "pop3")}, POP3S, "its TLS handshake and greeting"},
	}
	var ports []Port
	var fakes []*fake
	for _, s := range servers {
		f := startFake(t, s.s)
		fakes = append(fakes, f)
		ports = append(ports, Port{Number: f.port})
	}
	ssh := startGreeter(t, "SSH-2.0-OpenSSH_9.2p1\r\n")
	ports = append(ports, Port{Number: ssh})
	r := check(t, p, ports...)
	for i, s := range servers {
		pr := r.Ports[i]
		if pr.Kind != s.kind || pr.How != s.how || !pr.Answered {
			t.Errorf("port %d: got %q by %q (answered %v), want %q by %q", fakes[i].port, pr.Kind, pr.How, pr.Answered, s.kind, s.how)
		}
	}
	last := r.Ports[len(r.Ports)-1]
	if last.Kind != "" || last.Answered || !strings.Contains(verdicts(r, ssh)[IDService].Seen, "SSH-2.0") {
		t.Errorf("ssh port: got %q (answered %v) %+v, want no kind and its greeting quoted", last.Kind, last.Answered, verdicts(r, ssh)[IDService])
	}
}

// startGreeter is a server that writes greeting, then reads until the
// client closes.
func startGreeter(t *testing.T, greeting string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte(greeting))
				buf := make([]byte, 512)
				for {
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
