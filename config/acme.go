package config

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ACME obtains and renews certificates from an ACME CA (RFC 8555).
type ACME struct {
	// Domains are every name users type into their mail app; one
	// certificate each. "*.example.com" needs the dns challenge. Required.
	Domains []string `yaml:"domains"`
	// Email is the account's contact address at the CA. Configuring ACME
	// agrees to the CA's terms of service.
	Email string `yaml:"email"`
	// CA is the directory URL; empty means tlsconf.LetsEncrypt.
	CA string `yaml:"ca"`
	// CARoot is a PEM file trusted for a private CA's own HTTPS (step-ca,
	// Pebble); default the system roots.
	CARoot string `yaml:"ca_root"`
	// EAB is the external account binding some CAs require (ZeroSSL,
	// Google Trust Services); both fields or neither.
	EAB EAB `yaml:"eab"`
	// Storage is the directory for the account, keys, certificates and
	// locks; empty means the command's default (defaultACMEStorage in
	// cmd/mailfront). Instances sharing it (a shared volume) order each
	// name once.
	Storage string `yaml:"storage"`
	// Challenges are how the CA checks the names; at least one.
	Challenges Challenges `yaml:"challenges"`
}

// EAB is an external account binding (RFC 8555 section 7.3.4).
type EAB struct {
	// KeyID is the key identifier the CA gave you.
	KeyID string `yaml:"key_id"`
	// MACKey is the base64url HMAC key the CA gave you.
	MACKey string `yaml:"mac_key"`
}

// Challenges lists the enabled ACME challenge types.
type Challenges struct {
	// HTTP serves http-01 on Address. A public CA connects to port 80.
	HTTP *ChallengeListener `yaml:"http"`
	// TLSALPN serves tls-alpn-01 on Address. A public CA connects to port 443.
	TLSALPN *ChallengeListener `yaml:"tls_alpn"`
	// DNS publishes dns-01 TXT records; the only one that can prove a
	// wildcard, and the only one that needs no open port.
	DNS *DNSChallenge `yaml:"dns"`
}

// ChallengeListener is where mailfront answers a challenge.
type ChallengeListener struct {
	// Address is host:port, e.g. ":80", or a port a forward points at.
	Address string `yaml:"address"`
}

// DNSChallenge publishes the dns-01 TXT record.
type DNSChallenge struct {
	// Provider is "rfc2136" (dynamic update with TSIG: BIND, Knot,
	// PowerDNS) or "exec" (a command of yours).
	Provider string `yaml:"provider"`
	// Server is the primary that accepts updates, host:port (rfc2136).
	Server string `yaml:"server"`
	// TSIGKey is the TSIG key name (rfc2136).
	TSIGKey string `yaml:"tsig_key"`
	// TSIGSecret is the base64 TSIG secret (rfc2136).
	TSIGSecret string `yaml:"tsig_secret"`
	// TSIGAlgorithm is hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224
	// or hmac-sha1 (rfc2136); empty means acmedns.DefaultAlgorithm.
	TSIGAlgorithm string `yaml:"tsig_algorithm"`
	// Zone is the zone to update; default found by asking Server (rfc2136).
	Zone string `yaml:"zone"`
	// Command is run as: command... present|cleanup <fqdn.> <value> (exec).
	Command []string `yaml:"command"`
}

// publicCAs are directories whose CA checks http-01 on port 80 and
// tls-alpn-01 on port 443 of the public address, and nowhere else.
var publicCAs = []string{"letsencrypt.org", "zerossl.com", "pki.goog", "buypass.com", "ssl.com"}

func (c *Config) validateACME(p *problems) {
	a := c.TLS.ACME
	if len(a.Domains) == 0 {
		p.add("tls.acme.domains", "no domain: list every name users type into their mail app")
	}
	seen := map[string]bool{}
	for i, d := range a.Domains {
		path := fmt.Sprintf("tls.acme.domains[%d]", i)
		if err := checkDomain(d); err != nil {
			p.add(path, "%v", err)
		} else if strings.HasPrefix(d, "*.") && a.Challenges.DNS == nil {
			p.add(path, "%s: a wildcard can only be proved with the dns challenge", d)
		}
		if seen[strings.ToLower(d)] {
			p.add(path, "%s is listed twice", d)
		}
		seen[strings.ToLower(d)] = true
	}
	if a.Email != "" && !strings.Contains(strings.Trim(a.Email, "@"), "@") {
		p.add("tls.acme.email", "%q is not an e-mail address", a.Email)
	}
	if u, err := url.Parse(a.CA); a.CA != "" && (err != nil || u.Scheme != "https" || u.Host == "") {
		p.add("tls.acme.ca", "%q is not an https:// ACME directory URL: give the CA's directory URL, or leave it out for the default", a.CA)
	}
	if a.CARoot != "" {
		if err := checkPEMRoots(a.CARoot); err != nil {
			p.add("tls.acme.ca_root", "%v", err)
		}
	}
	if (a.EAB.KeyID == "") != (a.EAB.MACKey == "") {
		p.add("tls.acme.eab", "needs both key_id and mac_key")
	} else if a.EAB.MACKey != "" {
		if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(a.EAB.MACKey, "=")); err != nil {
			p.add("tls.acme.eab.mac_key", "is not base64url")
		}
	}
	if fi, err := os.Stat(a.Storage); a.Storage != "" && err == nil && !fi.IsDir() {
		p.add("tls.acme.storage", "%s is not a directory", a.Storage)
	}
	c.validateChallenges(p)
}

func (c *Config) validateChallenges(p *problems) {
	ch := c.TLS.ACME.Challenges
	if ch.HTTP == nil && ch.TLSALPN == nil && ch.DNS == nil {
		p.add("tls.acme.challenges", "none enabled: add http (the CA connects to port 80), "+
			"tls_alpn (port 443) or dns (no open port; needed for wildcards)")
	}
	if ch.HTTP != nil {
		c.checkChallengeAddress(p, "tls.acme.challenges.http.address", ch.HTTP.Address)
	}
	if ch.TLSALPN != nil {
		c.checkChallengeAddress(p, "tls.acme.challenges.tls_alpn.address", ch.TLSALPN.Address)
	}
	if ch.HTTP != nil && ch.TLSALPN != nil && ch.HTTP.Address == ch.TLSALPN.Address && ch.HTTP.Address != "" {
		p.add("tls.acme.challenges.tls_alpn.address", "%q is also the http challenge's address", ch.TLSALPN.Address)
	}
	if ch.DNS != nil {
		checkDNSChallenge(p, ch.DNS)
	}
}

func (c *Config) checkChallengeAddress(p *problems, path, addr string) {
	if err := checkHostPort(addr, false); err != nil {
		p.add(path, "%v", err)
		return
	}
	for i, l := range c.Listeners {
		if l.Address == addr {
			p.add(path, "%q is also the address of listeners[%d]: the CA never checks a mail port", addr, i)
		}
	}
	_, port, _ := net.SplitHostPort(addr)
	if slices.Contains([]string{"993", "995", "143", "110"}, port) {
		p.add(path, "port %s is a mail port: a CA checks http-01 on port 80 and tls-alpn-01 on port 443 only", port)
	}
}

func checkDNSChallenge(p *problems, d *DNSChallenge) {
	const path = "tls.acme.challenges.dns"
	switch d.Provider {
	case "rfc2136":
		if d.Server == "" {
			p.add(path+".server", "missing: the primary server that accepts updates, host:port")
		} else if _, _, err := net.SplitHostPort(d.Server); err != nil {
			p.add(path+".server", "%q is not host:port (e.g. ns1.example.com:53)", d.Server)
		}
		if d.TSIGKey == "" {
			p.add(path+".tsig_key", "missing: the TSIG key name the server allows updates with")
		}
		if _, err := base64.StdEncoding.DecodeString(d.TSIGSecret); err != nil || d.TSIGSecret == "" {
			p.add(path+".tsig_secret", "missing or not base64 (tsig-keygen prints it as secret \"...\")")
		}
		switch strings.TrimSuffix(strings.ToLower(d.TSIGAlgorithm), ".") {
		case "", "hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1":
		default:
			p.add(path+".tsig_algorithm", "%q is not hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224 or hmac-sha1", d.TSIGAlgorithm)
		}
		if len(d.Command) > 0 {
			p.add(path+".command", "is for provider exec")
		}
	case "exec":
		if len(d.Command) == 0 {
			p.add(path+".command", "missing: [/path/to/hook], run as hook present|cleanup <fqdn.> <value>")
		} else if err := checkExecutable(d.Command[0]); err != nil {
			p.add(path+".command", "%v", err)
		}
		if d.Server != "" || d.TSIGKey != "" || d.TSIGSecret != "" {
			p.add(path, "server and tsig_* are for provider rfc2136")
		}
	default:
		p.add(path+".provider", "%q is not rfc2136 or exec", d.Provider)
	}
}

// checkDomain accepts a DNS name a certificate can hold, optionally with a
// leading "*." label.
func checkDomain(d string) error {
	name := strings.TrimPrefix(d, "*.")
	if net.ParseIP(name) != nil {
		return fmt.Errorf("%q: IP addresses are not supported; use a name", d)
	}
	labels := strings.Split(name, ".")
	if len(name) > 253 || len(labels) < 2 {
		return fmt.Errorf("%q is not a fully qualified domain name", d)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' || strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return fmt.Errorf("%q is not a valid domain name", d)
		}
	}
	return nil
}

func checkPEMRoots(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", path, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}

func checkExecutable(cmd string) error {
	if !filepath.IsAbs(cmd) {
		return fmt.Errorf("%q: give the absolute path", cmd)
	}
	fi, err := os.Stat(cmd)
	if err != nil {
		return fmt.Errorf("cannot find %s: %v", cmd, err)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", cmd)
	}
	return nil
}

// Warnings are valid settings that probably will not work as meant.
func (c *Config) Warnings() []string {
	w := append(c.acmeWarnings(), c.adminWarnings()...)
	w = append(w, c.proxyProtocolWarnings()...)
	return append(w, c.certificateWarnings(time.Now())...)
}

func (c *Config) acmeWarnings() []string {
	a := c.TLS.ACME
	if a == nil || !isPublicCA(a.CA) {
		return nil
	}
	ca := a.CA
	if ca == "" {
		ca = "the default CA"
	}
	var w []string
	check := func(key string, l *ChallengeListener, want string) {
		if l == nil {
			return
		}
		if _, port, err := net.SplitHostPort(l.Address); err == nil && port != want {
			w = append(w, fmt.Sprintf("%s: %s connects to port %s only; forward port %s to %s",
				key, ca, want, want, l.Address))
		}
	}
	check("tls.acme.challenges.http.address", a.Challenges.HTTP, "80")
	check("tls.acme.challenges.tls_alpn.address", a.Challenges.TLSALPN, "443")
	return w
}

// isPublicCA reports whether ca, a directory URL, is a public CA's; the
// default (empty: tlsconf's Let's Encrypt) is one.
func isPublicCA(ca string) bool {
	if ca == "" {
		return true
	}
	u, err := url.Parse(ca)
	if err != nil {
		return false
	}
	for _, d := range publicCAs {
		if u.Hostname() == d || strings.HasSuffix(u.Hostname(), "."+d) {
			return true
		}
	}
	return false
}
