package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestACMENewcomer checks the smallest ACME setup: one domain, one e-mail,
// one challenge, no file certificate. The CA and storage stay empty: their
// defaults are tlsconf's and the command's.
func TestACMENewcomer(t *testing.T) {
	c, err := Parse([]byte(`tls:
  acme:
    domains: [mail.example.com]
    email: postmaster@example.com
    challenges:
      http: {address: ":80"}
` + oneListener))
	if err != nil {
		t.Fatal(err)
	}
	a := c.TLS.ACME
	if a.CA != "" || a.Storage != "" {
		t.Errorf("got ca %q storage %q, want them left empty for their owners' defaults", a.CA, a.Storage)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("got warnings %q, want none for port 80", w)
	}
}

// TestACMEDNSDefaults: an rfc2136 challenge without tsig_algorithm is
// valid, and the algorithm stays empty for acmedns's default.
func TestACMEDNSDefaults(t *testing.T) {
	c, err := Parse([]byte(`tls:
  acme:
    domains: ["*.example.com", example.com]
    challenges:
      dns: {provider: rfc2136, server: "ns1.example.com:53", tsig_key: k., tsig_secret: c2VjcmV0}
` + oneListener))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.TLS.ACME.Challenges.DNS.TSIGAlgorithm; got != "" {
		t.Errorf("got tsig_algorithm %q, want it left empty", got)
	}
}

func TestACMEProblems(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, acme string
		want       []string
	}{
		{"nothing", "{}", []string{
			"tls.acme.domains: no domain",
			"tls.acme.challenges: none enabled",
		}},
		{"bad names and fields", `
    domains: ["*.example.com", "mail..example.com", "192.0.2.1", localhost, a.example.com, A.example.com]
    email: postmaster
    ca: http://ca.example/dir
    ca_root: /nonexistent/root.pem
    eab: {key_id: kid}
    storage: ` + notDir + `
    challenges: {http: {address: ":80"}}`, []string{
			"tls.acme.domains[0]: *.example.com: a wildcard can only be proved with the dns challenge",
			`tls.acme.domains[1]: "mail..example.com" is not a valid domain name`,
			`tls.acme.domains[2]: "192.0.2.1": IP addresses are not supported`,
			`tls.acme.domains[3]: "localhost" is not a fully qualified domain name`,
			"tls.acme.domains[5]: A.example.com is listed twice",
			`tls.acme.email: "postmaster" is not an e-mail address`,
			`tls.acme.ca: "http://ca.example/dir" is not an https:// ACME directory URL`,
			"tls.acme.ca_root: cannot read /nonexistent/root.pem",
			"tls.acme.eab: needs both key_id and mac_key",
			"tls.acme.storage: " + notDir + " is not a directory",
		}},
		{"challenge on a mail port", `
    domains: [mail.example.com]
    challenges: {http: {address: ":993"}, tls_alpn: {address: "127.0.0.1:1143"}}`, []string{
			"tls.acme.challenges.http.address: port 993 is a mail port",
			`tls.acme.challenges.tls_alpn.address: "127.0.0.1:1143" is also the address of listeners[0]`,
		}},
		{"rfc2136 incomplete", `
    domains: [mail.example.com]
    challenges: {dns: {provider: rfc2136, server: ns1, tsig_secret: "not base64!", tsig_algorithm: md5}}`, []string{
			`tls.acme.challenges.dns.server: "ns1" is not host:port`,
			"tls.acme.challenges.dns.tsig_key: missing",
			"tls.acme.challenges.dns.tsig_secret: missing or not base64",
			`tls.acme.challenges.dns.tsig_algorithm: "md5" is not`,
		}},
		{"exec relative", `
    domains: [mail.example.com]
    challenges: {dns: {provider: exec, command: [hook.sh]}}`, []string{
			`tls.acme.challenges.dns.command: "hook.sh": give the absolute path`,
		}},
		{"unknown provider", `
    domains: [mail.example.com]
    challenges: {dns: {provider: route53}}`, []string{
			`tls.acme.challenges.dns.provider: "route53" is not rfc2136 or exec`,
		}},
	}
	listener := "listeners:\n  - {protocol: imap, address: \"127.0.0.1:1143\", tls: starttls, backend: \"127.0.0.1:143\"}\n"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte("tls:\n  acme: " + tt.acme + "\n" + listener))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestACMEWarnings checks that a public CA with a challenge on another
// port than it connects to is flagged, and a private CA is not.
func TestACMEWarnings(t *testing.T) {
	for _, tt := range []struct {
		ca   string
		want int
	}{{"", 2}, {"https://acme.zerossl.com/v2/DV90", 2}, {"https://ca.internal:9000/acme/acme/directory", 0}} {
		ca := ""
		if tt.ca != "" {
			ca = "\n    ca: " + tt.ca
		}
		c, err := Parse([]byte(`tls:
  acme:
    domains: [mail.example.com]` + ca + `
    challenges: {http: {address: ":8080"}, tls_alpn: {address: ":8443"}}
` + oneListener))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Warnings(); len(got) != tt.want {
			t.Errorf("ca %q: got warnings %q, want %d", tt.ca, got, tt.want)
		}
	}
}

// TestReadmeCertificateRecipes loads every YAML recipe in the README's
// Certificates section with a listener added: an operator copies them. Only
// files that do not exist on this machine (certbot's, a CA root, a hook)
// may be reported.
func TestReadmeCertificateRecipes(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n## Certificates\n")
	if !ok {
		t.Fatal("README.md has no Certificates section")
	}
	section, _, _ := strings.Cut(rest, "\n## ")
	blocks := strings.Split(section, "```yaml\n")[1:]
	if len(blocks) < 8 {
		t.Fatalf("got %d YAML recipes, want at least 8", len(blocks))
	}
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		_, err := Parse([]byte(b + oneListener))
		for _, e := range splitErrors(err) {
			if !strings.Contains(e, "cannot read") && !strings.Contains(e, "cannot find") {
				t.Errorf("recipe %d: %s\n%s", i+1, e, b)
			}
		}
	}
}
