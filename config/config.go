package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"
)

// Config is the whole file. A zero or missing value means the default of
// the package that owns the setting, named on each field; Parse leaves it
// zero (only a listener's name is filled in), so each default lives once,
// in its package. `mailfront validate --effective` prints the values in
// force.
type Config struct {
	// TLS is the client-facing TLS setup.
	TLS TLS `yaml:"tls"`
	// Listeners are the sockets mailfront serves; at least one.
	Listeners []Listener `yaml:"listeners"`
	// Limits bound every client.
	Limits Limits `yaml:"limits"`
	// Relay is how logged-in sessions are relayed.
	Relay Relay `yaml:"relay"`
	// Shutdown is what SIGTERM does.
	Shutdown Shutdown `yaml:"shutdown"`
	// Log is where and how mailfront logs.
	Log Log `yaml:"log"`
	// Guard is the password-guessing defence.
	Guard Guard `yaml:"guard"`
	// Access lists the networks that may connect.
	Access Access `yaml:"access"`
	// Admin is the metrics and health endpoint; off when absent.
	Admin *Admin `yaml:"admin"`
}

// TLS is the client-facing TLS setup.
type TLS struct {
	// MinVersion is "1.2" or "1.3"; empty means tlsconf.DefaultMinVersion.
	// Lower is refused.
	MinVersion string `yaml:"min_version"`
	// Certificates are PEM chains and keys, RSA or ECDSA, chosen by SNI;
	// the first is the default for clients without SNI. They are watched
	// and reloaded when they change. Required unless ACME is set.
	Certificates []Certificate `yaml:"certificates"`
	// ACME obtains and renews certificates itself. With Certificates too,
	// files win for the names they hold.
	ACME *ACME `yaml:"acme"`
}

// Certificate is one PEM certificate chain and its private key.
type Certificate struct {
	// CertFile is the chain, leaf first (certbot's fullchain.pem).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the private key (certbot's privkey.pem).
	KeyFile string `yaml:"key_file"`
}

// Listener is one listening socket.
type Listener struct {
	// Name labels logs; Parse names an unnamed listener
	// "<protocol>-<tls>-<port>". Unique.
	Name string `yaml:"name"`
	// Protocol is "imap" or "pop3".
	Protocol string `yaml:"protocol"`
	// Address is host:port to listen on, e.g. ":993".
	Address string `yaml:"address"`
	// TLS is "implicit" (993, 995) or "starttls" (143, 110).
	TLS string `yaml:"tls"`
	// Backend is the plaintext server: host:port or unix:/path.
	Backend string `yaml:"backend"`
	// MaxConnections caps this listener's connections; 0 means no cap of
	// its own (limits.max_connections still applies).
	MaxConnections int `yaml:"max_connections"`
	// Allow and Deny are this listener's own access lists (CIDRs), on top
	// of the global ones.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
	// PlaintextRefusal replaces the text refusing a login before TLS on a
	// STARTTLS listener; empty keeps the protocol's, which names
	// STARTTLS/STLS and the port of an implicit TLS listener for the same
	// protocol.
	PlaintextRefusal string `yaml:"plaintext_refusal"`
	// ProxyProtocol names the load balancers in front of this listener
	// that send PROXY headers; absent: none.
	ProxyProtocol *ProxyProtocol `yaml:"proxy_protocol"`
	// ClientAddress is how the backend learns the client's address: auto
	// (empty), id, proxy-v2, proxy-v1, loopback or none (see
	// proxy.ClientAddress).
	ClientAddress string `yaml:"client_address"`
	// Capabilities edits what the backend is taken to support, for a
	// backend that does not say (a POP3 server without CAPA) or says
	// more than it should; absent: what the backend advertises.
	Capabilities *Capabilities `yaml:"capabilities"`
}

// Capabilities is a listener's edit of its backend's capabilities.
type Capabilities struct {
	// Add are names to take as advertised: IMAP capabilities (IDLE,
	// UIDPLUS...), or POP3's TOP, UIDL, PIPELINING, "EXPIRE n",
	// "LOGIN-DELAY n" (offered to clients) and USER, "SASL PLAIN" (how
	// mailfront logs in).
	Add []string `yaml:"add"`
	// Remove are names to take as not advertised, even when the backend
	// lists them.
	Remove []string `yaml:"remove"`
}

// ProxyProtocol is a listener's PROXY protocol setting.
type ProxyProtocol struct {
	// Trusted are the load balancers (CIDRs, or addresses) whose
	// connections must start with a PROXY header, version 1 or 2. A
	// header from anywhere else is refused. Empty: nobody.
	Trusted []string `yaml:"trusted"`
	// Timeout bounds the header's arrival (zero:
	// proxy.DefaultProxyHeaderTimeout).
	Timeout time.Duration `yaml:"timeout"`
}

// Limits bound every client. Durations are Go durations ("30s", "31m").
// Zero means the owning package's default, named on each field; a
// negative value turns the limit off where the field says so and is an
// error elsewhere.
type Limits struct {
	// LineLength is the longest pre-login command line in bytes (zero:
	// proxy.DefaultLine).
	LineLength int `yaml:"line_length"`
	// LiteralSize is the largest pre-login IMAP literal in bytes (zero:
	// proxy.DefaultLiteral).
	LiteralSize int `yaml:"literal_size"`
	// Commands is how many commands a client may send before logging in
	// (zero: proxy.DefaultCommands).
	Commands int `yaml:"commands"`
	// InvalidCommands is how many rejected commands end the connection
	// (zero: proxy.DefaultInvalidCommands).
	InvalidCommands int `yaml:"invalid_commands"`
	// Idle is how long a pre-login client may take to send a command line
	// (zero: proxy.DefaultIdle).
	Idle time.Duration `yaml:"idle"`
	// Total is the longest pre-login phase (zero: proxy.DefaultTotal).
	Total time.Duration `yaml:"total"`
	// Handshake is the longest TLS handshake (zero: proxy.DefaultHandshake).
	Handshake time.Duration `yaml:"handshake"`
	// MaxConnections caps connections across all listeners (zero:
	// proxy.DefaultMaxConns; negative: no cap).
	MaxConnections int `yaml:"max_connections"`
	// IMAPIdle is the post-login idle limit for IMAP (zero:
	// imap.IdleTimeout); at least 30 minutes, RFC 9051 section 5.4's
	// minimum.
	IMAPIdle time.Duration `yaml:"imap_idle"`
	// POP3Idle is the post-login idle limit for POP3 (zero:
	// pop3.IdleTimeout); at least 10 minutes, RFC 1939 section 3's
	// minimum.
	POP3Idle time.Duration `yaml:"pop3_idle"`
	// BackendConnect is the backend dial timeout (zero:
	// proxy.DefaultBackendConnect).
	BackendConnect time.Duration `yaml:"backend_connect"`
	// BackendLogin is the time allowed for the backend's greeting and login
	// reply (zero: proxy.DefaultBackendLogin).
	BackendLogin time.Duration `yaml:"backend_login"`
	// Keepalive is the TCP keepalive period on both sides (zero:
	// proxy.DefaultKeepalive; negative: off).
	Keepalive time.Duration `yaml:"keepalive"`
	// ConnectionsPerNetwork caps one client network's connections (see
	// guard's prefixes; zero: guard.DefaultConnsPerNetwork; negative: no
	// cap).
	ConnectionsPerNetwork int `yaml:"connections_per_network"`
	// HandshakesPerMinute caps one client network's new TLS handshakes
	// (zero: guard.DefaultHandshakesPerMinute; negative: no cap).
	HandshakesPerMinute int `yaml:"handshakes_per_minute"`
}

// Relay is how logged-in sessions are relayed.
type Relay struct {
	// Mode is "optimized" or "standard"; empty means proxy's zero
	// RelayMode, proxy.RelayOptimized. Optimized: quiet sessions hold no
	// goroutine and no TLS input buffers. Standard: the plain
	// goroutine-per-direction relay, a way back if the optimized path
	// misbehaves.
	Mode string `yaml:"mode"`
}

// Shutdown is what SIGTERM and SIGINT do.
type Shutdown struct {
	// Drain is how long logged-in sessions get to finish before they are
	// closed (zero: proxy.DefaultDrain; negative: none, closed at once).
	// Pre-login sessions are told goodbye at once.
	Drain time.Duration `yaml:"drain"`
}

// Log configures logging to standard error.
type Log struct {
	// Format is "text" or "json"; empty means the command's default
	// (defaultLogFormat in cmd/mailfront).
	Format string `yaml:"format"`
	// Level is "debug", "info", "warn" or "error"; empty means the
	// command's default (defaultLogLevel in cmd/mailfront).
	Level string `yaml:"level"`
}

// Load reads and parses the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data)
}

// Parse decodes data strictly (unknown keys are errors, with the nearest
// known one), names unnamed listeners and validates, returning every
// problem at once, each with its key path and line. It fills in no
// other default: zeros reach the packages that own them.
func Parse(data []byte) (*Config, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("config is empty: see deploy/mailfront.yaml for an example")
	}
	var c Config
	lines := map[string]int{}
	if err := decode(data, &c, lines); err != nil {
		return nil, err
	}
	c.nameListeners()
	if err := c.Validate(); err != nil {
		return nil, withLines(err, lines)
	}
	return &c, nil
}
