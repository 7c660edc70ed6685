package tlsconf

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

// LetsEncrypt is the default ACME directory (ACME.CA): Let's Encrypt's
// production CA, free, trusted by every mail app, and the CA certmagic
// knows best (it falls back to the staging CA to check a challenge after a
// failure, sparing the production rate limits).
const LetsEncrypt = certmagic.LetsEncryptProductionCA

// ACME configures certificates obtained and renewed from an ACME CA
// (RFC 8555) through certmagic.
type ACME struct {
	// Domains are the names to obtain, one certificate each. "*.example.com"
	// needs DNS. No other name is ever ordered, whatever SNI a client sends.
	Domains []string
	// Email is the account contact. Configuring it agrees to the CA's terms.
	Email string
	// CA is the directory URL; default (empty) LetsEncrypt.
	CA string
	// CARoots are trusted for the CA's own HTTPS; nil means the system roots.
	CARoots *x509.CertPool
	// EABKeyID and EABMACKey bind the account to one at the CA (RFC 8555
	// section 7.3.4); both empty means none.
	EABKeyID, EABMACKey string
	// Storage is certmagic's directory: accounts, keys, certificates and
	// locks. Instances sharing it order each name once. Required: where a
	// process keeps its state is its command's business.
	Storage string
	// HTTPAddress serves http-01 (RFC 8555 section 8.3); "" disables it.
	HTTPAddress string
	// TLSALPNAddress serves tls-alpn-01 (RFC 8737); "" disables it.
	TLSALPNAddress string
	// DNS solves dns-01 (RFC 8555 section 8.4); nil disables it.
	DNS acmez.Solver

	// RenewCheckInterval is how often certificates are checked for renewal;
	// default certmagic's 10 minutes.
	RenewCheckInterval time.Duration
	// RenewalWindowRatio is the share of a certificate's lifetime left when
	// it is renewed, unless the CA's renewal information says otherwise;
	// default certmagic's 1/3. Tests raise it to renew at once.
	RenewalWindowRatio float64
	// RetryMin and RetryMax bound the backoff between attempts to obtain
	// the first certificates; defaults 5s and 10m.
	RetryMin, RetryMax time.Duration
}

// WithDefaults returns a with its zero values resolved as the ACME
// manager resolves them.
func (a ACME) WithDefaults() ACME {
	if a.CA == "" {
		a.CA = LetsEncrypt
	}
	return a
}

func (a *ACME) check() error {
	var errs []error
	if len(a.Domains) == 0 {
		errs = append(errs, errors.New("no domain"))
	}
	if a.Storage == "" {
		errs = append(errs, errors.New("no storage directory"))
	}
	if a.HTTPAddress == "" && a.TLSALPNAddress == "" && a.DNS == nil {
		errs = append(errs, errors.New("no challenge enabled"))
	}
	for _, d := range a.Domains {
		if strings.HasPrefix(d, "*.") && a.DNS == nil {
			errs = append(errs, fmt.Errorf("%s: a wildcard needs the dns challenge", d))
		} else if !certmagic.SubjectQualifiesForCert(d) {
			errs = append(errs, fmt.Errorf("%q is not a name a certificate can hold", d))
		}
	}
	if (a.EABKeyID == "") != (a.EABMACKey == "") {
		errs = append(errs, errors.New("eab needs both a key ID and a MAC key"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tlsconf: acme: %w", err)
	}
	return nil
}

// acmeManager runs certmagic for the configured names: it obtains them,
// keeps them renewed and looks them up for handshakes. It serves the
// challenges on their own listeners and never from the mail listeners.
type acmeManager struct {
	opts    ACME
	log     *slog.Logger
	domains []string // lower case, as configured
	cache   *certmagic.Cache
	cfg     *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	servers []*challengeServer
	closed  sync.Once
}

func newACME(opts ACME, log *slog.Logger) (*acmeManager, error) {
	opts = opts.WithDefaults()
	if err := opts.check(); err != nil {
		return nil, err
	}
	m := &acmeManager{opts: opts, log: log}
	for _, d := range opts.Domains {
		m.domains = append(m.domains, strings.ToLower(d))
	}
	zl := zapToSlog(log)
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.cfg, nil },
		RenewCheckInterval: opts.RenewCheckInterval,
		Logger:             zl,
	})
	m.cfg = certmagic.New(m.cache, certmagic.Config{
		Storage:            &certmagic.FileStorage{Path: opts.Storage},
		Logger:             zl,
		OnEvent:            m.event,
		RenewalWindowRatio: opts.RenewalWindowRatio,
	})
	tmpl := certmagic.ACMEIssuer{
		CA:                      opts.CA,
		Email:                   opts.Email,
		Agreed:                  true,
		TrustedRoots:            opts.CARoots,
		DisableHTTPChallenge:    opts.HTTPAddress == "",
		DisableTLSALPNChallenge: opts.TLSALPNAddress == "",
		DNS01Solver:             opts.DNS,
		Logger:                  zl,
	}
	if opts.EABKeyID != "" {
		tmpl.ExternalAccount = &acme.EAB{KeyID: opts.EABKeyID, MACKey: opts.EABMACKey}
	}
	// certmagic also tries to listen for a challenge itself; pointing it at
	// our own listeners' ports makes it find them busy and leave them be.
	if host, port, err := splitPort(opts.HTTPAddress); err == nil {
		tmpl.ListenHost, tmpl.AltHTTPPort = host, port
	}
	if host, port, err := splitPort(opts.TLSALPNAddress); err == nil {
		tmpl.ListenHost, tmpl.AltTLSALPNPort = host, port
	}
	m.issuer = certmagic.NewACMEIssuer(m.cfg, tmpl)
	m.cfg.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return host, port, err
}

// start opens the challenge listeners, then obtains (or loads from
// storage) a certificate for every name, retrying with backoff until it
// has them all or ctx ends. certmagic renews them from then on.
func (m *acmeManager) start(ctx context.Context) error {
	if err := m.listen(); err != nil {
		m.close()
		return err
	}
	wait := cmp.Or(m.opts.RetryMin, 5*time.Second)
	maxWait := cmp.Or(m.opts.RetryMax, 10*time.Minute)
	pending := m.domains
	for attempt := 1; ; attempt++ {
		var err error
		if pending, err = m.manage(ctx, pending); len(pending) == 0 {
			return nil
		}
		if ctx.Err() == nil {
			m.log.Error("certificates not obtained yet; retrying", "attempt", attempt, "retry_in", wait.String(), "error", err)
		}
		select {
		case <-ctx.Done():
			m.close()
			return fmt.Errorf("obtain certificates: %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWait)
	}
}

// manage has certmagic manage each name, one at a time so that one name's
// trouble does not hold the others up, and returns the names still without
// a certificate. A stored certificate whose renewal is due but fails is
// served while certmagic keeps retrying the renewal in the background.
func (m *acmeManager) manage(ctx context.Context, names []string) (left []string, err error) {
	var errs []error
	for _, d := range names {
		e := m.cfg.ManageSync(ctx, []string{d})
		if e == nil {
			continue
		}
		if c, _ := m.lookup(d); c != nil && time.Now().Before(c.Leaf.NotAfter) {
			m.log.Warn("serving the stored certificate; its renewal failed and is retried in the background",
				"name", d, "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339), "error", e)
			continue
		}
		left, errs = append(left, d), append(errs, e)
	}
	return left, errors.Join(errs...)
}

// close stops the challenge listeners and renewals; it may be called more
// than once.
func (m *acmeManager) close() {
	m.closed.Do(func() {
		for _, s := range m.servers {
			s.close()
		}
		m.cache.Stop()
	})
}

// lookup finds the managed certificate for name: exact holds a certificate
// naming it, wild one whose wildcard covers it. Of several, the one that
// lasts longest wins.
func (m *acmeManager) lookup(name string) (exact, wild *tls.Certificate) {
	var exactEnd, wildEnd time.Time
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf == nil || len(c.Certificate.Certificate) == 0 {
			continue
		}
		end := c.Leaf.NotAfter
		switch {
		case containsName(c.Names, name):
			if exact == nil || end.After(exactEnd) {
				exact, exactEnd = &c.Certificate, end
			}
		case oneLabelWildcard(c.Names, name):
			if wild == nil || end.After(wildEnd) {
				wild, wildEnd = &c.Certificate, end
			}
		}
	}
	return exact, wild
}

// fallback is the first configured name's certificate, for clients
// without SNI or with a name nothing covers.
func (m *acmeManager) fallback() *tls.Certificate {
	c, _ := m.lookup(m.domains[0])
	return c
}

// certs lists the managed certificates in service, one per name.
func (m *acmeManager) certs() []cert {
	var out []cert
	for _, d := range m.domains {
		if c, _ := m.lookup(d); c != nil {
			out = append(out, cert{tls: c, names: []string{d}, notAfter: c.Leaf.NotAfter})
		}
	}
	return out
}

func containsName(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

func oneLabelWildcard(names []string, name string) bool {
	i := strings.IndexByte(name, '.')
	return i > 0 && containsName(names, "*"+name[i:])
}

// event logs certmagic's certificate events with the name and expiry.
func (m *acmeManager) event(ctx context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtained":
		msg := "certificate obtained"
		if renewal {
			msg = "certificate renewed"
		}
		path, _ := data["certificate_path"].(string)
		m.log.Info(msg, "name", name, "not_after", m.storedExpiry(ctx, path), "issuer", data["issuer"])
	case "cert_failed":
		err, _ := data["error"].(error)
		if renewal {
			exact, wild := m.lookup(name)
			if exact == nil {
				exact = wild
			}
			notAfter := "none"
			if exact != nil {
				notAfter = exact.Leaf.NotAfter.UTC().Format(time.RFC3339)
			}
			m.log.Error("certificate renewal failed; the current certificate stays in service", "name", name, "not_after", notAfter, "error", err)
			return nil
		}
		m.log.Error("certificate not obtained", "name", name, "error", err)
	}
	return nil
}

// storedExpiry reads a certificate certmagic just saved and returns its
// NotAfter, or "unknown".
func (m *acmeManager) storedExpiry(ctx context.Context, key string) string {
	pemBytes, err := m.cfg.Storage.Load(ctx, key)
	if err != nil {
		return "unknown"
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return "unknown"
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "unknown"
	}
	return leaf.NotAfter.UTC().Format(time.RFC3339)
}
