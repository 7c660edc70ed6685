package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// problems collects validation errors with their key paths.
type problems []error

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// Validate checks the whole configuration and returns every problem found,
// joined, each prefixed with its key path.
func (c *Config) Validate() error {
	var p problems
	c.validateTLS(&p)
	c.validateListeners(&p)
	c.validateLimits(&p)
	c.validateGuard(&p)
	c.validateAccess(&p)
	switch c.Relay.Mode {
	case "", "optimized", "standard":
	default:
		p.add("relay.mode", "%q is neither optimized nor standard: use standard for the plain goroutine-per-direction relay, "+
			"or leave the key out for the default", c.Relay.Mode)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		p.add("log.format", "%q is not text or json", c.Log.Format)
	}
	switch strings.ToLower(c.Log.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		p.add("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	return errors.Join(p...)
}

// notNegative is the problem of a negative value where no "off" exists.
const notNegative = "must not be negative: set a positive value, or leave it out (or 0) for the default"

func (c *Config) validateTLS(p *problems) {
	switch c.TLS.MinVersion {
	case "", "1.2", "1.3":
	default:
		p.add("tls.min_version", "%q refused: mailfront speaks TLS 1.2 and 1.3 only (use \"1.2\" or \"1.3\")", c.TLS.MinVersion)
	}
	if len(c.TLS.Certificates) == 0 && c.TLS.ACME == nil {
		p.add("tls", "no certificate source configured: add acme (domains, email, a challenge) or certificates "+
			"(cert_file/key_file pairs); mailfront demo makes its own")
	}
	if c.TLS.ACME != nil {
		c.validateACME(p)
	}
	for i, cert := range c.TLS.Certificates {
		path := fmt.Sprintf("tls.certificates[%d]", i)
		ok := true
		for _, kv := range [][2]string{{"cert_file", cert.CertFile}, {"key_file", cert.KeyFile}} {
			key, file := kv[0], kv[1]
			if file == "" {
				p.add(path+"."+key, "missing")
				ok = false
			} else if f, err := os.Open(file); err != nil {
				p.add(path+"."+key, "cannot read %s: %v", file, errors.Unwrap(err))
				ok = false
			} else {
				f.Close()
			}
		}
		if ok {
			if _, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile); err != nil {
				p.add(path, "%s and %s do not load as a certificate and its key: %v", cert.CertFile, cert.KeyFile, err)
			}
		}
	}
}

func (c *Config) validateListeners(p *problems) {
	if len(c.Listeners) == 0 {
		p.add("listeners", "no listener configured")
	}
	names := map[string]int{}
	addrs := map[string]int{}
	for i, l := range c.Listeners {
		path := fmt.Sprintf("listeners[%d]", i)
		if l.Protocol != "imap" && l.Protocol != "pop3" {
			p.add(path+".protocol", "%q is not imap or pop3", l.Protocol)
		}
		if l.TLS != "implicit" && l.TLS != "starttls" {
			p.add(path+".tls", "%q is not implicit or starttls", l.TLS)
		}
		if err := checkHostPort(l.Address, true); err != nil {
			p.add(path+".address", "%v", err)
		}
		if err := checkBackend(l.Backend); err != nil {
			p.add(path+".backend", "%v", err)
		}
		c.validateClientIdentity(p, path, l)
		validateCapabilities(p, path+".capabilities", l)
		if l.MaxConnections < 0 {
			p.add(path+".max_connections", "must not be negative: 0 (or leaving it out) means no cap of its own")
		}
		if j, dup := names[l.Name]; dup {
			p.add(path+".name", "%q is also the name of listeners[%d]", l.Name, j)
		}
		names[l.Name] = i
		if j, dup := addrs[l.Address]; dup && l.Address != "" && !strings.HasSuffix(l.Address, ":0") {
			p.add(path+".address", "%q is also the address of listeners[%d]", l.Address, j)
		}
		addrs[l.Address] = i
	}
}

// validateClientIdentity checks a listener's proxy_protocol and
// client_address.
func (c *Config) validateClientIdentity(p *problems, path string, l Listener) {
	if pp := l.ProxyProtocol; pp != nil {
		checkPrefixes(p, path+".proxy_protocol.trusted", pp.Trusted)
		if pp.Timeout < 0 {
			p.add(path+".proxy_protocol.timeout", notNegative)
		}
	}
	switch l.ClientAddress {
	case "", "auto", "id", "proxy-v2", "proxy-v1", "none":
	case "loopback":
		host, _, err := net.SplitHostPort(l.Backend)
		ip, perr := netip.ParseAddr(host)
		if l.Backend != "" && (err != nil || perr != nil || !ip.Is4() || !ip.IsLoopback()) {
			p.add(path+".client_address", "loopback needs a backend on this host at an address in 127.0.0.0/8 (such as 127.0.0.1:143), not %q: "+
				"mailfront dials it from a loopback address of each client network's own", l.Backend)
		}
	default:
		p.add(path+".client_address", "%q is not one of auto, id, proxy-v2, proxy-v1, loopback or none", l.ClientAddress)
	}
}

// IMAPOwnedCapabilities are the IMAP capabilities mailfront offers or
// withholds itself, whatever the backend says (imap's mailfrontOwned, and
// every AUTH=): a listener's capabilities key cannot name them.
var IMAPOwnedCapabilities = []string{
	"IMAP4REV1", "IMAP4REV2", "STARTTLS", "LOGINDISABLED", "SASL-IR", "ID",
	"LITERAL+", "LITERAL-", "LOGIN-REFERRALS", "UNAUTHENTICATE",
}

// POP3Capabilities are the POP3 capabilities a listener's capabilities key
// may name, with whether they take an argument: the ones mailfront offers
// after login as the backend has them, how it logs in (USER, SASL PLAIN)
// and XCLIENT (remove only: whether it tells the backend the client's
// address).
var POP3Capabilities = map[string]bool{
	"TOP": false, "UIDL": false, "PIPELINING": false, "EXPIRE": true, "LOGIN-DELAY": true,
	"USER": false, "SASL": true, "XCLIENT": false,
}

// validateCapabilities checks a listener's capabilities key.
func validateCapabilities(p *problems, path string, l Listener) {
	if l.Capabilities == nil {
		return
	}
	seen := map[string]string{}
	for _, side := range []struct {
		key   string
		names []string
	}{{"add", l.Capabilities.Add}, {"remove", l.Capabilities.Remove}} {
		for i, name := range side.names {
			at := fmt.Sprintf("%s.%s[%d]", path, side.key, i)
			var problem string
			if l.Protocol == "pop3" {
				problem = pop3CapabilityProblem(name, side.key == "add")
			} else {
				problem = imapCapabilityProblem(name)
			}
			if problem != "" {
				p.add(at, "%s", problem)
				continue
			}
			key := strings.ToUpper(strings.Fields(name)[0])
			if other, ok := seen[key]; ok && other != side.key {
				p.add(at, "%q is both added and removed: keep it in one list", name)
			}
			seen[key] = side.key
		}
	}
}

func imapCapabilityProblem(name string) string {
	switch u := strings.ToUpper(name); {
	case name == "" || strings.ContainsAny(name, " \t(){%*\"\\]") || strings.ContainsFunc(name, func(r rune) bool { return r < 0x21 || r > 0x7e }):
		return fmt.Sprintf("%q is not an IMAP capability name (one word of printable ASCII, such as IDLE or UIDPLUS)", name)
	case strings.HasPrefix(u, "AUTH=") || slices.Contains(IMAPOwnedCapabilities, u):
		return fmt.Sprintf("%s is mailfront's own to offer or withhold (it speaks the dialogue before login itself): "+
			"only the backend's other capabilities can be added or removed", name)
	}
	return ""
}

func pop3CapabilityProblem(name string, add bool) string {
	f := strings.Fields(name)
	if len(f) == 0 {
		return "an empty name: write TOP, UIDL, PIPELINING, EXPIRE n, LOGIN-DELAY n, USER or SASL PLAIN"
	}
	kw := strings.ToUpper(f[0])
	takesArg, known := POP3Capabilities[kw]
	switch {
	case !known:
		return fmt.Sprintf("%q is not one mailfront can offer for a POP3 backend: write TOP, UIDL, PIPELINING, EXPIRE n, LOGIN-DELAY n "+
			"(what clients are offered after login), USER or SASL PLAIN (how mailfront logs in), or XCLIENT (remove only)", name)
	case add && kw == "XCLIENT":
		return "XCLIENT can only be removed: mailfront tells the backend the client's address when the backend offers it (see client_address)"
	case add && kw == "SASL" && (len(f) != 2 || !strings.EqualFold(f[1], "PLAIN")):
		return fmt.Sprintf("%q: the SASL mechanism mailfront logs in with is PLAIN: write SASL PLAIN", name)
	case add && kw != "SASL" && takesArg && len(f) != 2:
		return fmt.Sprintf("%q: %s takes one argument, as the backend would list it (%s 30, or %s NEVER)", name, kw, kw, kw)
	case add && !takesArg && len(f) != 1, !add && len(f) > 1 && kw != "SASL":
		return fmt.Sprintf("%q: write %s alone", name, kw)
	}
	for _, a := range f[1:] {
		if len(a) > 40 || strings.ContainsFunc(a, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '/')
		}) {
			return fmt.Sprintf("%q: an argument is letters, digits, '-' and '/' only", name)
		}
	}
	return ""
}

func checkHostPort(addr string, listen bool) error {
	if addr == "" {
		return errors.New("missing")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !listen) {
		return fmt.Errorf("%q has no valid port", addr)
	}
	return nil
}

func checkBackend(b string) error {
	if path, ok := strings.CutPrefix(b, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("%q: a unix socket path must be absolute (unix:/path)", b)
		}
		return nil
	}
	if err := checkHostPort(b, false); err != nil {
		return fmt.Errorf("%w (want host:port or unix:/path)", err)
	}
	return nil
}

// RFC minimums of the post-login idle limits: checks, not defaults (the
// defaults are imap.IdleTimeout and pop3.IdleTimeout).
const (
	rfc9051MinIdle = 30 * time.Minute // RFC 9051 section 5.4: at least 30 minutes
	rfc1939MinIdle = 10 * time.Minute // RFC 1939 section 3: at least 10 minutes
)

// validateLimits checks the limits that are set; zero means the default,
// and a negative value is an error except where it turns a limit off
// (max_connections, keepalive, connections_per_network,
// handshakes_per_minute).
func (c *Config) validateLimits(p *problems) {
	l := c.Limits
	ints := []struct {
		key string
		v   int
	}{
		{"line_length", l.LineLength}, {"literal_size", l.LiteralSize}, {"commands", l.Commands},
		{"invalid_commands", l.InvalidCommands},
	}
	for _, f := range ints {
		if f.v < 0 {
			p.add("limits."+f.key, notNegative)
		}
	}
	if l.LineLength > 0 && l.LineLength < 512 {
		p.add("limits.line_length", "%d is too short for real clients (at least 512; RFC 2683 suggests 8000)", l.LineLength)
	}
	durs := []struct {
		key string
		v   time.Duration
	}{
		{"idle", l.Idle}, {"total", l.Total}, {"handshake", l.Handshake},
		{"backend_connect", l.BackendConnect}, {"backend_login", l.BackendLogin},
	}
	for _, f := range durs {
		if f.v < 0 {
			p.add("limits."+f.key, notNegative)
		}
	}
	if l.IMAPIdle != 0 && l.IMAPIdle < rfc9051MinIdle {
		p.add("limits.imap_idle", "%v is below 30 minutes, the least RFC 9051 section 5.4 allows: raise it, or leave it out for the default", l.IMAPIdle)
	}
	if l.POP3Idle != 0 && l.POP3Idle < rfc1939MinIdle {
		p.add("limits.pop3_idle", "%v is below 10 minutes, the least RFC 1939 section 3 allows: raise it, or leave it out for the default", l.POP3Idle)
	}
}

// proxyProtocolWarnings flag a proxy_protocol that trusts every address:
// then every connection must come through a balancer, and anyone who can
// reach the listener directly can claim to be any client.
func (c *Config) proxyProtocolWarnings() []string {
	var w []string
	for i, l := range c.Listeners {
		if l.ProxyProtocol == nil {
			continue
		}
		for j, t := range l.ProxyProtocol.Trusted {
			if pfx, err := ParsePrefix(t); err == nil && pfx.Bits() == 0 {
				w = append(w, fmt.Sprintf("listeners[%d].proxy_protocol.trusted[%d]: %s trusts every address to name its client: "+
					"make sure only the load balancer can reach %s, or list the balancer's own addresses", i, j, pfx, l.Address))
			}
		}
	}
	return w
}

// certificateWarnings flag certificate files whose leaf has expired at
// now: mailfront serves them (a client that does not check may still
// connect), but mail apps refuse them. (One that expires soon is logged
// at start, beside the renewal that should take care of it.)
func (c *Config) certificateWarnings(now time.Time) []string {
	var w []string
	for i, cf := range c.TLS.Certificates {
		pair, err := tls.LoadX509KeyPair(cf.CertFile, cf.KeyFile)
		if err != nil || pair.Leaf == nil {
			continue // Validate reports it
		}
		if !now.Before(pair.Leaf.NotAfter) {
			w = append(w, fmt.Sprintf("tls.certificates[%d]: %s expired at %s: mail apps refuse it; renew it",
				i, cf.CertFile, pair.Leaf.NotAfter.UTC().Format(time.RFC3339)))
		}
	}
	return w
}
