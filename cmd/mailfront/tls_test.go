package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
)

// The TLS policy as a client meets it through the running binary's wiring:
// config -> tlsconf -> proxy listener.
func TestTLSPolicyEndToEnd(t *testing.T) {
	f := startRun(t)
	base := func() *tls.Config {
		return &tls.Config{RootCAs: f.ca.Pool(), ServerName: "localhost"}
	}
	tests := []struct {
		name   string
		cfg    func(*tls.Config)
		served bool
	}{
		{"TLS 1.0 refused", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS10 }, false},
		{"TLS 1.1 refused", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS11, tls.VersionTLS11 }, false},
		{"TLS 1.2 CBC-only refused", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}
		}, false},
		{"TLS 1.2 GCM served", func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, true},
		{"TLS 1.3 served", func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }, true},
		{"ALPN pop3 on an IMAP listener refused", func(c *tls.Config) { c.NextProtos = []string{"pop3"} }, false},
		{"ALPN imap served", func(c *tls.Config) { c.NextProtos = []string{"imap"} }, true},
		{"no SNI served the default certificate", func(c *tls.Config) {
			c.ServerName = ""
			c.InsecureSkipVerify = true // no name to verify against; the chain is checked below
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.cfg(cfg)
			c, err := tls.Dial("tcp", f.addr["imaps"], cfg)
			if !tt.served {
				if err == nil {
					c.Close()
					t.Fatalf("handshake succeeded with %s, want refused", tls.VersionName(c.ConnectionState().Version))
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			st := c.ConnectionState()
			if _, err := st.PeerCertificates[0].Verify(verifyOpts(f)); err != nil {
				t.Fatalf("served certificate does not verify for localhost: %v", err)
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "* OK") {
				t.Fatalf("got %q, %v; want the greeting", line, err)
			}
		})
	}
}

func verifyOpts(f *runFixture) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: f.ca.Pool(), DNSName: "localhost"}
}

// The first client is offered the backend's capabilities: the backend was
// probed before the listeners opened. imapmem offers LITERAL- before login,
// and mailfront offers it only when the backend has it.
func TestFirstGreetingCarriesBackendCapabilities(t *testing.T) {
	f := startRun(t)
	c, err := tls.Dial("tcp", f.addr["imaps"], &tls.Config{RootCAs: f.ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{" LITERAL-", " AUTH=PLAIN"} {
		if !strings.Contains(line, want) {
			t.Errorf("greeting %q lacks %q", strings.TrimSpace(line), want)
		}
	}
}
