package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mailfront/mailfront/acmedns"
	"github.com/mailfront/mailfront/config"
	"github.com/mailfront/mailfront/guard"
	"github.com/mailfront/mailfront/imap"
	"github.com/mailfront/mailfront/pop3"
	"github.com/mailfront/mailfront/proxy"
	"github.com/mailfront/mailfront/tlsconf"
)

// setting is one line of `mailfront validate --effective`: a key path as
// README.md's configuration reference spells it, and the value in force.
type setting struct{ key, value string }

// Values that are not numbers, durations, words or lists.
const (
	valueOff    = "off"      // a limit turned off (a negative value), or an absent endpoint
	valueNone   = "(none)"   // an optional string left empty
	valueHidden = "(hidden)" // a secret, set
)

// settings collects the lines in order.
type settings []setting

func (s *settings) add(key, value string) { *s = append(*s, setting{key, value}) }

// str is a string setting; empty is valueNone.
func (s *settings) str(key, v string) {
	if v == "" {
		v = valueNone
	}
	s.add(key, v)
}

// secret is a secret setting: never printed.
func (s *settings) secret(key, v string) {
	if v != "" {
		v = valueHidden
	}
	s.str(key, v)
}

func (s *settings) list(key string, v []string) { s.add(key, "["+strings.Join(v, ", ")+"]") }

func (s *settings) prefixes(key string, v []netip.Prefix) {
	var l []string
	for _, p := range v {
		l = append(l, p.String())
	}
	s.list(key, l)
}

// count is a resolved count; a negative one or math.MaxInt means no cap.
func (s *settings) count(key string, n int) {
	if n < 0 || n == math.MaxInt {
		s.add(key, valueOff)
		return
	}
	s.add(key, strconv.Itoa(n))
}

// dur is a resolved duration; zero means off where off is allowed.
func (s *settings) dur(key string, d time.Duration, zeroOff bool) {
	if d == 0 && zeroOff {
		s.add(key, valueOff)
		return
	}
	s.add(key, formatDuration(d))
}

// formatDuration writes d as Go's time.Duration does, without the zero
// units that follow a larger one: 10m, 1h, 1m30s, 500ms. It parses back
// with time.ParseDuration.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// effective returns every setting's value in force, in the order of
// README.md's configuration reference. The values come from the options
// startFront builds, resolved by each package as it resolves them when it
// runs; building them also reports what only a package can check.
func effective(cfg *config.Config) (settings, error) {
	discard := slog.New(slog.DiscardHandler)
	var s settings
	store, err := storeOptions(cfg.TLS, discard)
	if err != nil {
		return nil, err
	}
	store = store.WithDefaults()
	s.add("tls.min_version", strings.TrimPrefix(tls.VersionName(store.MinVersion), "TLS "))
	for i, c := range store.Certificates {
		s.str(fmt.Sprintf("tls.certificates[%d].cert_file", i), c.CertFile)
		s.str(fmt.Sprintf("tls.certificates[%d].key_file", i), c.KeyFile)
	}
	if store.ACME != nil {
		if err := s.acme(cfg.TLS.ACME, store.ACME); err != nil {
			return nil, err
		}
	}
	g, err := guardOptions(cfg, discard).WithDefaults()
	if err != nil {
		return nil, err
	}
	limits := proxyLimits(cfg).WithDefaults()
	for i, l := range cfg.Listeners {
		s.listener(fmt.Sprintf("listeners[%d].", i), newListener(cfg, l, limits), l, g)
	}
	srv := newServer(cfg, discard, nil)
	s.limits(cfg.Limits, limits, srv, g)
	s.add("relay.mode", srv.Relay.String())
	s.guard(cfg.Guard, limits, g)
	s.prefixes("access.allow", g.Allow)
	s.prefixes("access.deny", g.Deny)
	if cfg.Admin == nil {
		s.add("admin.address", valueOff)
	} else {
		s.str("admin.address", cfg.Admin.Address)
	}
	s.dur("shutdown.drain", proxy.EffectiveDrain(srv.Drain), true)
	level, err := logLevel(cfg.Log)
	if err != nil {
		return nil, err
	}
	s.add("log.format", logFormat(cfg.Log))
	s.add("log.level", strings.ToLower(level.String()))
	return s, nil
}

func (s *settings) acme(c *config.ACME, a *tlsconf.ACME) error {
	resolved := a.WithDefaults()
	s.list("tls.acme.domains", resolved.Domains)
	s.str("tls.acme.email", resolved.Email)
	s.str("tls.acme.ca", resolved.CA)
	if c.CARoot == "" {
		s.add("tls.acme.ca_root", "(system roots)")
	} else {
		s.str("tls.acme.ca_root", c.CARoot)
	}
	s.str("tls.acme.eab.key_id", resolved.EABKeyID)
	s.secret("tls.acme.eab.mac_key", resolved.EABMACKey)
	s.str("tls.acme.storage", resolved.Storage)
	for _, ch := range []struct{ key, addr string }{
		{"tls.acme.challenges.http.address", resolved.HTTPAddress},
		{"tls.acme.challenges.tls_alpn.address", resolved.TLSALPNAddress},
	} {
		if ch.addr == "" {
			s.add(ch.key, valueOff)
		} else {
			s.add(ch.key, ch.addr)
		}
	}
	const dns = "tls.acme.challenges.dns."
	switch solver := resolved.DNS.(type) {
	case nil:
		s.add(dns+"provider", valueOff)
	case *acmedns.Exec:
		s.add(dns+"provider", "exec")
		s.list(dns+"command", solver.Command)
	case *acmedns.RFC2136:
		alg, err := acmedns.NormalizeAlgorithm(solver.Algorithm)
		if err != nil {
			return fmt.Errorf("%stsig_algorithm: %w", dns, err)
		}
		s.add(dns+"provider", "rfc2136")
		s.str(dns+"server", solver.Server)
		s.str(dns+"tsig_key", solver.KeyName)
		s.secret(dns+"tsig_secret", solver.Secret)
		s.add(dns+"tsig_algorithm", strings.TrimSuffix(alg, "."))
		if solver.Zone == "" {
			s.add(dns+"zone", "(found by SOA query)")
		} else {
			s.add(dns+"zone", solver.Zone)
		}
	}
	return nil
}

func (s *settings) listener(p string, pl *proxy.Listener, l config.Listener, g guard.Options) {
	s.str(p+"name", pl.Name)
	s.str(p+"protocol", pl.Protocol)
	s.str(p+"address", pl.Address)
	s.add(p+"tls", pl.Mode.String())
	s.str(p+"backend", l.Backend)
	s.add(p+"max_connections", strconv.Itoa(pl.MaxConns)) // 0: none of its own
	s.prefixes(p+"allow", g.ListenerAllow[pl.Name])
	s.prefixes(p+"deny", g.ListenerDeny[pl.Name])
	switch {
	case pl.Mode != proxy.STARTTLS:
		s.add(p+"plaintext_refusal", "(unused: implicit TLS)")
	default:
		s.add(p+"plaintext_refusal", pl.PlaintextRefusal)
	}
	s.prefixes(p+"proxy_protocol.trusted", pl.ProxyProtocol.Trusted)
	s.dur(p+"proxy_protocol.timeout", proxy.EffectiveProxyHeaderTimeout(pl.ProxyProtocol.Timeout), false)
	s.add(p+"client_address", newBackend(config.Limits{}, l, nil).ClientAddress.String())
	edit := capabilityEdit(l)
	s.add(p+"capabilities.add", "["+strings.Join(edit.Add, ", ")+"]")
	s.add(p+"capabilities.remove", "["+strings.Join(edit.Remove, ", ")+"]")
}

func (s *settings) limits(c config.Limits, l proxy.Limits, srv *proxy.Server, g guard.Options) {
	s.count("limits.line_length", l.Line)
	s.count("limits.literal_size", l.Literal)
	s.count("limits.commands", l.Commands)
	s.count("limits.invalid_commands", l.InvalidCommands)
	s.dur("limits.idle", l.Idle, false)
	s.dur("limits.total", l.Total, false)
	s.dur("limits.handshake", l.Handshake, false)
	s.count("limits.max_connections", proxy.EffectiveMaxConns(srv.MaxConns))
	// The handlers resolve their idle limits as they do when they run.
	s.dur("limits.imap_idle", imap.New(imapOptions(c, nil, nil)).Idle, false)
	s.dur("limits.pop3_idle", pop3.New(pop3Options(c, nil, nil)).Idle, false)
	be := newBackend(c, config.Listener{}, nil)
	connect, login := be.EffectiveTimeouts()
	s.dur("limits.backend_connect", connect, false)
	s.dur("limits.backend_login", login, false)
	s.dur("limits.keepalive", proxy.EffectiveKeepalive(be.Keepalive), true)
	s.count("limits.connections_per_network", g.ConnsPerNetwork)
	s.count("limits.handshakes_per_minute", g.HandshakesPerMinute)
}

func (s *settings) guard(c config.Guard, l proxy.Limits, g guard.Options) {
	s.add("guard.enabled", strconv.FormatBool(c.GuardEnabled()))
	s.prefixes("guard.trusted", g.Trusted)
	s.count("guard.ipv4_prefix", g.IPv4Prefix)
	s.count("guard.ipv6_prefix", g.IPv6Prefix)
	s.dur("guard.base_delay", g.BaseDelay, false)
	s.dur("guard.max_delay", g.MaxDelay, false)
	s.dur("guard.half_life", g.HalfLife, false)
	s.count("guard.failures_per_connection", l.AuthFailures)
	s.count("guard.block.failures", g.BlockFailures)
	s.dur("guard.block.window", g.BlockWindow, false)
	s.dur("guard.block.duration", g.BlockDuration, false)
	s.count("guard.user.failures", g.UserFailures)
	s.dur("guard.user.max_delay", g.UserMaxDelay, false)
	s.count("guard.logins_in_flight", g.LoginsInFlight)
	s.count("guard.parallel_logins", g.ParallelLogins)
}

// printEffective writes every setting as "key: value", one a line.
func printEffective(w io.Writer, s settings) {
	for _, kv := range s {
		fmt.Fprintf(w, "%s: %s\n", kv.key, kv.value)
	}
}
