package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// tls12Suites are the only TLS 1.2 suites offered: ECDHE key exchange with
// AEAD ciphers (RFC 9325 section 4.2). TLS 1.3 suites are all AEAD and
// not configurable in Go.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// DefaultMinVersion is the lowest TLS version offered unless Options says
// TLS 1.3: RFC 8996 retired TLS 1.0 and 1.1, and RFC 9325 section 3.1.1
// still asks servers to take TLS 1.2, which every mail app in use speaks.
const DefaultMinVersion = tls.VersionTLS12

// ErrMinVersion is returned for a minimum version below TLS 1.2.
var ErrMinVersion = errors.New("tlsconf: minimum version below TLS 1.2")

// CertFile names one PEM certificate chain and its key.
type CertFile struct {
	CertFile string
	KeyFile  string
}

// Options configure a Store. At least one of Certificates and ACME is set.
type Options struct {
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13; default (0)
	// DefaultMinVersion. Anything lower is refused.
	MinVersion uint16
	// Certificates are loaded in order; the first is the default.
	Certificates []CertFile
	// ACME, when set, obtains and renews certificates for its domains.
	ACME *ACME
	// WatchInterval is how often Start's watcher looks at the certificate
	// files; default 2s, negative turns watching off.
	WatchInterval time.Duration
	Log           *slog.Logger
	// Now is for tests (default time.Now).
	Now func() time.Time
}

// Store holds the certificates in service. It is safe for concurrent use:
// handshakes read the current set, Reload swaps in a new one.
type Store struct {
	min   uint16
	files []CertFile
	log   *slog.Logger
	now   func() time.Time
	set   atomic.Pointer[certSet] // the files' certificates
	acme  *acmeManager            // nil without ACME
	watch watcher
	// reloaded is told the result of every reload of the files.
	reloaded atomic.Pointer[func(error)]
}

// OnReload sets a function told the result of every reload of the
// certificate files, by the watcher or SIGHUP (metrics).
func (s *Store) OnReload(f func(err error)) { s.reloaded.Store(&f) }

func (s *Store) tellReload(err error) {
	if f := s.reloaded.Load(); f != nil {
		(*f)(err)
	}
}

// WithDefaults returns o with its zero values resolved as New resolves
// them: MinVersion and, when set, a copy of ACME with its own defaults.
func (o Options) WithDefaults() Options {
	if o.MinVersion == 0 {
		o.MinVersion = DefaultMinVersion
	}
	if o.ACME != nil {
		a := o.ACME.WithDefaults()
		o.ACME = &a
	}
	return o
}

// New loads every certificate file and prepares ACME without contacting
// the CA; Start obtains the ACME certificates. Errors name the file.
func New(opts Options) (*Store, error) {
	opts = opts.WithDefaults()
	s, err := newStore(opts.MinVersion, opts.Log, opts.Now)
	if err != nil {
		return nil, err
	}
	if len(opts.Certificates) == 0 && opts.ACME == nil {
		return nil, errors.New("tlsconf: no certificate configured")
	}
	s.files = opts.Certificates
	s.watch.interval = opts.WatchInterval
	s.watch.loaded = s.stat()
	set, err := loadFiles(s.files)
	if err != nil {
		return nil, err
	}
	s.set.Store(set)
	s.logCerts("certificates loaded", set.certs)
	if opts.ACME != nil {
		if s.acme, err = newACME(*opts.ACME, s.log); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Start obtains the ACME certificates (or loads them from storage),
// retrying until it has them all or ctx ends, and starts watching the
// certificate files. Close stops both.
func (s *Store) Start(ctx context.Context) error {
	if s.acme != nil {
		if err := s.acme.start(ctx); err != nil {
			return err
		}
		for _, c := range s.acme.certs() { // renewal warns on its own
			s.log.Info("certificates loaded", "names", c.names[0], "not_after", c.notAfter.UTC().Format(time.RFC3339), "source", "acme")
		}
	}
	s.startWatch()
	return nil
}

// Close stops certificate renewal, the challenge listeners and the file
// watcher. Certificates already in service keep working.
func (s *Store) Close() {
	s.stopWatch()
	if s.acme != nil {
		s.acme.close()
	}
}

// NewWithCertificates is a Store over fixed certificates (the demo, tests).
// It panics on a version below TLS 1.2 or an unparsable certificate.
func NewWithCertificates(minVersion uint16, certs ...tls.Certificate) *Store {
	s, err := newStore(minVersion, nil, nil)
	if err != nil {
		panic(err)
	}
	if len(certs) == 0 {
		panic("tlsconf: no certificate")
	}
	set, err := newCertSet(certs)
	if err != nil {
		panic(err)
	}
	s.set.Store(set)
	return s
}

func newStore(minVersion uint16, log *slog.Logger, now func() time.Time) (*Store, error) {
	if minVersion == 0 {
		minVersion = DefaultMinVersion
	}
	if minVersion < tls.VersionTLS12 {
		return nil, ErrMinVersion
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Store{min: minVersion, log: log, now: now}, nil
}

// Reload re-reads every certificate file. On any failure the certificates
// in service stay in service and the error says which file failed; open
// sessions are never affected, new handshakes see the new set.
func (s *Store) Reload() error {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	if len(s.files) == 0 {
		return nil
	}
	stamp := s.stat()
	set, err := loadFiles(s.files)
	if err != nil {
		s.watch.failed = stamp
		s.tellReload(err)
		return fmt.Errorf("reload certificates: %w", err)
	}
	s.set.Store(set)
	s.watch.loaded, s.watch.failed = stamp, ""
	s.tellReload(nil)
	s.logCerts("certificates reloaded", set.certs)
	return nil
}

func (s *Store) logCerts(msg string, certs []cert) {
	for _, c := range certs {
		names, notAfter := strings.Join(c.names, ","), c.notAfter.UTC().Format(time.RFC3339)
		s.log.Info(msg, "names", names, "not_after", notAfter)
		switch left := c.notAfter.Sub(s.now()); {
		case left <= 0:
			s.log.Error("certificate expired: clients refuse it; renew it (or let ACME obtain one)", "names", names, "not_after", notAfter)
		case left < 14*24*time.Hour:
			s.log.Warn("certificate expires soon", "names", names, "not_after", notAfter)
		}
	}
}

// Config is the *tls.Config for one listener. alpn is the listener's
// protocol ("imap" or "pop3"): a client that offers ALPN without it fails
// the handshake (Go's server enforces this since 1.17).
func (s *Store) Config(alpn string) *tls.Config {
	return &tls.Config{
		MinVersion:     s.min,
		CipherSuites:   tls12Suites,
		NextProtos:     []string{alpn},
		GetCertificate: s.getCertificate,
	}
}

// getCertificate chooses by SNI among the files' and ACME's certificates:
// an exact name before a wildcard; for the same kind of match, files win.
// A client without SNI, or with a name nothing covers, gets the default:
// the first file's certificate, else the first ACME domain's. Nothing here
// ever orders a certificate.
func (s *Store) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := sniName(hello.ServerName)
	set := s.set.Load()
	exact, wild := set.lookup(name)
	if exact != nil {
		return exact, nil
	}
	if s.acme != nil && name != "" {
		aexact, awild := s.acme.lookup(name)
		if aexact != nil {
			return aexact, nil
		}
		if wild == nil {
			wild = awild
		}
	}
	if wild != nil {
		return wild, nil
	}
	if c := set.fallback(); c != nil {
		return c, nil
	}
	if s.acme != nil {
		if c := s.acme.fallback(); c != nil {
			return c, nil
		}
	}
	return nil, errors.New("tlsconf: no certificate in service")
}

// certs lists every certificate in service: the files', then ACME's.
func (s *Store) certs() []cert {
	certs := s.set.Load().certs
	if s.acme != nil {
		certs = append(slices.Clip(certs), s.acme.certs()...)
	}
	return certs
}

// Names lists the names the certificates in service cover.
func (s *Store) Names() []string {
	var names []string
	for _, c := range s.certs() {
		names = append(names, c.names...)
	}
	return names
}

// Expiry maps each certificate name to its certificate's NotAfter.
func (s *Store) Expiry() map[string]time.Time {
	m := map[string]time.Time{}
	for _, c := range s.certs() {
		for _, n := range c.names {
			if t, ok := m[n]; !ok || c.notAfter.After(t) {
				m[n] = c.notAfter
			}
		}
	}
	return m
}
