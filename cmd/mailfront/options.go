package main

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/mailfront/mailfront/acmedns"
	"github.com/mailfront/mailfront/config"
	"github.com/mailfront/mailfront/guard"
	"github.com/mailfront/mailfront/imap"
	"github.com/mailfront/mailfront/pop3"
	"github.com/mailfront/mailfront/proxy"
	"github.com/mailfront/mailfront/tlsconf"
	"github.com/mholt/acmez/v3"
)

// This file turns the configuration into each package's options. startFront
// and `validate --effective` both build them here, and each package
// resolves its own zeros (Limits.WithDefaults, guard's
// Options.WithDefaults...): so what --effective prints is what runs.
// The command's own defaults are the constants below.

// The command's defaults.
const (
	// defaultLogFormat is log.format's default: logfmt-style text, which
	// people read and fail2ban's filter matches as well as JSON.
	defaultLogFormat = "text"
	// defaultLogLevel is log.level's default: session starts and ends,
	// logins and refusals, no protocol traces.
	defaultLogLevel = "info"
	// defaultACMEStorage is tls.acme.storage's default: the state
	// directory deploy/mailfront.service has systemd create
	// (StateDirectory=mailfront, mode 0700). Where a process keeps its
	// state is the command's business, not tlsconf's.
	defaultACMEStorage = "/var/lib/mailfront"
)

// proxyLimits are every listener's pre-login limits.
func proxyLimits(cfg *config.Config) proxy.Limits {
	lim := cfg.Limits
	return proxy.Limits{
		Line:            lim.LineLength,
		Literal:         lim.LiteralSize,
		Commands:        lim.Commands,
		InvalidCommands: lim.InvalidCommands,
		Idle:            lim.Idle,
		Total:           lim.Total,
		Handshake:       lim.Handshake,
		AuthFailures:    cfg.Guard.FailuresPerConnection,
	}
}

// newServer is the engine without its listeners.
func newServer(cfg *config.Config, log *slog.Logger, gate proxy.Gate) *proxy.Server {
	return &proxy.Server{
		Log:      log,
		MaxConns: cfg.Limits.MaxConnections,
		Drain:    cfg.Shutdown.Drain,
		Relay:    relayMode(cfg.Relay.Mode),
		Gate:     gate,
	}
}

// relayMode maps relay.mode to the engine's mode. Empty is the engine's
// default, RelayMode's zero value (RelayOptimized).
func relayMode(mode string) proxy.RelayMode {
	if mode == "standard" {
		return proxy.RelayStandard
	}
	return proxy.RelayOptimized
}

// newListener is one listener without its TLS configuration and handler.
func newListener(cfg *config.Config, l config.Listener, limits proxy.Limits) *proxy.Listener {
	pl := &proxy.Listener{
		Name:      l.Name,
		Protocol:  l.Protocol,
		Address:   l.Address,
		Mode:      proxy.Implicit,
		Limits:    limits,
		MaxConns:  l.MaxConnections,
		Keepalive: cfg.Limits.Keepalive,
	}
	if l.TLS == "starttls" {
		pl.Mode = proxy.STARTTLS
		pl.PlaintextRefusal = l.PlaintextRefusal
		if pl.PlaintextRefusal == "" {
			pl.PlaintextRefusal = plaintextRefusal(cfg, l)
		}
	}
	if pp := l.ProxyProtocol; pp != nil {
		pl.ProxyProtocol = proxy.ProxyProtocol{Trusted: config.ParsePrefixes(pp.Trusted), Timeout: pp.Timeout}
	}
	return pl
}

// plaintextRefusal is the protocol's text refusing a login before TLS on
// the STARTTLS listener l, naming the port of an implicit TLS listener for
// the same protocol (one for the same backend first), the port mailfront
// really serves it on; without one, it names STARTTLS or STLS alone.
func plaintextRefusal(cfg *config.Config, l config.Listener) string {
	port := 0
	for _, o := range cfg.Listeners {
		if o.TLS != "implicit" || o.Protocol != l.Protocol {
			continue
		}
		_, p, _ := net.SplitHostPort(o.Address)
		n, _ := strconv.Atoi(p)
		if n != 0 && (port == 0 || o.Backend == l.Backend) {
			port = n
		}
	}
	if l.Protocol == "pop3" {
		return pop3.PlaintextRefusal(port)
	}
	return imap.PlaintextRefusal(port)
}

// newBackend says how to reach one backend server for the listener l and
// how to tell it who the client is; network groups client addresses as
// the guard does (nil: proxy's default).
func newBackend(lim config.Limits, l config.Listener, network func(netip.Addr) netip.Prefix) *proxy.Backend {
	tell, _ := proxy.ParseClientAddress(l.ClientAddress) // validated
	return &proxy.Backend{
		Address:       l.Backend,
		Connect:       lim.BackendConnect,
		Login:         lim.BackendLogin,
		Keepalive:     lim.Keepalive,
		ClientAddress: tell,
		Network:       network,
	}
}

// capabilityEdit is the listener's capabilities key for its handler.
func capabilityEdit(l config.Listener) proxy.CapabilityEdit {
	if l.Capabilities == nil {
		return proxy.CapabilityEdit{}
	}
	return proxy.CapabilityEdit{Add: l.Capabilities.Add, Remove: l.Capabilities.Remove}
}

// capabilitiesText is a capabilities key in one line, for /readyz: "add
// TOP, UIDL; remove PIPELINING".
func capabilitiesText(c *config.Capabilities) string {
	var parts []string
	if c != nil && len(c.Add) > 0 {
		parts = append(parts, "add "+strings.Join(c.Add, ", "))
	}
	if c != nil && len(c.Remove) > 0 {
		parts = append(parts, "remove "+strings.Join(c.Remove, ", "))
	}
	if len(parts) == 0 {
		return "(as the backend advertises)"
	}
	return strings.Join(parts, "; ")
}

func imapOptions(lim config.Limits, be *proxy.Backend, log *slog.Logger) imap.Options {
	return imap.Options{Backend: be, Idle: lim.IMAPIdle, Log: log}
}

func pop3Options(lim config.Limits, be *proxy.Backend, log *slog.Logger) pop3.Options {
	return pop3.Options{Backend: be, Idle: lim.POP3Idle, Log: log}
}

// guardOptions builds the guard from the guard, access and limits
// sections; guard.New resolves its zeros.
func guardOptions(cfg *config.Config, log *slog.Logger) guard.Options {
	g := cfg.Guard
	opts := guard.Options{
		Log:                 log.With("component", "guard"),
		IPv4Prefix:          g.IPv4Prefix,
		IPv6Prefix:          g.IPv6Prefix,
		Trusted:             config.ParsePrefixes(g.Trusted),
		Allow:               config.ParsePrefixes(cfg.Access.Allow),
		Deny:                config.ParsePrefixes(cfg.Access.Deny),
		ListenerAllow:       map[string][]netip.Prefix{},
		ListenerDeny:        map[string][]netip.Prefix{},
		BaseDelay:           g.BaseDelay,
		MaxDelay:            g.MaxDelay,
		HalfLife:            g.HalfLife,
		BlockFailures:       g.Block.Failures,
		BlockWindow:         g.Block.Window,
		BlockDuration:       g.Block.Duration,
		UserFailures:        g.User.Failures,
		UserMaxDelay:        g.User.MaxDelay,
		LoginsInFlight:      g.LoginsInFlight,
		ParallelLogins:      g.ParallelLogins,
		ConnsPerNetwork:     cfg.Limits.ConnectionsPerNetwork,
		HandshakesPerMinute: cfg.Limits.HandshakesPerMinute,
	}
	for _, l := range cfg.Listeners {
		opts.ListenerAllow[l.Name] = config.ParsePrefixes(l.Allow)
		opts.ListenerDeny[l.Name] = config.ParsePrefixes(l.Deny)
	}
	return opts
}

// storeOptions builds the certificate store's options from the tls
// section: files, ACME, or both.
func storeOptions(c config.TLS, log *slog.Logger) (tlsconf.Options, error) {
	opts := tlsconf.Options{Log: log}
	switch c.MinVersion {
	case "1.2":
		opts.MinVersion = tls.VersionTLS12
	case "1.3":
		opts.MinVersion = tls.VersionTLS13
	}
	for _, f := range c.Certificates {
		opts.Certificates = append(opts.Certificates, tlsconf.CertFile{CertFile: f.CertFile, KeyFile: f.KeyFile})
	}
	if c.ACME != nil {
		a, err := acmeOptions(c.ACME, log)
		if err != nil {
			return tlsconf.Options{}, err
		}
		opts.ACME = a
	}
	return opts, nil
}

func acmeOptions(a *config.ACME, log *slog.Logger) (*tlsconf.ACME, error) {
	opts := &tlsconf.ACME{
		Domains:   a.Domains,
		Email:     a.Email,
		CA:        a.CA,
		EABKeyID:  a.EAB.KeyID,
		EABMACKey: a.EAB.MACKey,
		Storage:   cmp.Or(a.Storage, defaultACMEStorage),
	}
	if a.CARoot != "" {
		pem, err := os.ReadFile(a.CARoot)
		if err != nil {
			return nil, fmt.Errorf("tls.acme.ca_root: %w", err)
		}
		opts.CARoots = x509.NewCertPool()
		if !opts.CARoots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.acme.ca_root: %s holds no PEM certificate", a.CARoot)
		}
	}
	if h := a.Challenges.HTTP; h != nil {
		opts.HTTPAddress = h.Address
	}
	if t := a.Challenges.TLSALPN; t != nil {
		opts.TLSALPNAddress = t.Address
	}
	if d := a.Challenges.DNS; d != nil {
		opts.DNS = dnsSolver(d, log.With("challenge", "dns-01", "provider", d.Provider))
	}
	return opts, nil
}

func dnsSolver(d *config.DNSChallenge, log *slog.Logger) acmez.Solver {
	if d.Provider == "exec" {
		return &acmedns.Exec{Command: d.Command, Log: log}
	}
	return &acmedns.RFC2136{
		Server:    d.Server,
		KeyName:   d.TSIGKey,
		Secret:    d.TSIGSecret,
		Algorithm: d.TSIGAlgorithm,
		Zone:      d.Zone,
		Log:       log,
	}
}

// logFormat and logLevel are the log section with the command's defaults.
func logFormat(c config.Log) string { return cmp.Or(c.Format, defaultLogFormat) }

func logLevel(c config.Log) (slog.Level, error) {
	var level slog.Level
	name := cmp.Or(c.Level, defaultLogLevel)
	if err := level.UnmarshalText([]byte(name)); err != nil {
		return level, fmt.Errorf("log.level %q: %w", name, err)
	}
	return level, nil
}

// newLogger builds the process logger from the log section.
func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	level, err := logLevel(c)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if logFormat(c) == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
