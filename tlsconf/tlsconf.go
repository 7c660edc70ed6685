package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
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

// ErrMinVersion is returned for a minimum version below TLS 1.2.
var ErrMinVersion = errors.New("tlsconf: minimum version below TLS 1.2")

// CertFile names one PEM certificate chain and its key.
type CertFile struct {
	CertFile string
	KeyFile  string
}

// Options configure a Store.
type Options struct {
	// MinVersion is tls.VersionTLS12 (the default when 0) or tls.VersionTLS13.
	MinVersion uint16
	// Certificates are loaded in order; the first is the default.
	Certificates []CertFile
	Log          *slog.Logger
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
	set   atomic.Pointer[certSet]
}

// New loads every certificate file. Errors name the file.
func New(opts Options) (*Store, error) {
	s, err := newStore(opts.MinVersion, opts.Log, opts.Now)
	if err != nil {
		return nil, err
	}
	if len(opts.Certificates) == 0 {
		return nil, errors.New("tlsconf: no certificate configured")
	}
	s.files = opts.Certificates
	set, err := loadFiles(s.files)
	if err != nil {
		return nil, err
	}
	s.set.Store(set)
	s.logSet("certificates loaded")
	return s, nil
}

// NewWithCertificates is a Store over fixed certificates (the demo, tests).
// It panics on a version below TLS 1.2 or an unparsable certificate.
func NewWithCertificates(min uint16, certs ...tls.Certificate) *Store {
	s, err := newStore(min, nil, nil)
	if err != nil {
		panic(err)
	}
	set, err := newCertSet(certs)
	if err != nil {
		panic(err)
	}
	s.set.Store(set)
	return s
}

func newStore(min uint16, log *slog.Logger, now func() time.Time) (*Store, error) {
	if min == 0 {
		min = tls.VersionTLS12
	}
	if min < tls.VersionTLS12 {
		return nil, ErrMinVersion
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Store{min: min, log: log, now: now}, nil
}

// Reload re-reads every certificate file. On any failure the certificates
// in service stay in service and the error says which file failed; open
// sessions are never affected, new handshakes see the new set.
func (s *Store) Reload() error {
	if len(s.files) == 0 {
		return nil
	}
	set, err := loadFiles(s.files)
	if err != nil {
		return fmt.Errorf("reload certificates: %w", err)
	}
	s.set.Store(set)
	s.logSet("certificates reloaded")
	return nil
}

func (s *Store) logSet(msg string) {
	for _, c := range s.set.Load().certs {
		s.log.Info(msg, "names", strings.Join(c.names, ","), "not_after", c.notAfter.UTC().Format(time.RFC3339))
		if left := c.notAfter.Sub(s.now()); left < 14*24*time.Hour {
			s.log.Warn("certificate expires soon", "names", strings.Join(c.names, ","), "not_after", c.notAfter.UTC().Format(time.RFC3339))
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

func (s *Store) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.set.Load().choose(hello.ServerName), nil
}

// Names lists the names the certificates in service cover.
func (s *Store) Names() []string {
	var names []string
	for _, c := range s.set.Load().certs {
		names = append(names, c.names...)
	}
	return names
}

// Expiry maps each certificate name to its certificate's NotAfter.
func (s *Store) Expiry() map[string]time.Time {
	m := map[string]time.Time{}
	for _, c := range s.set.Load().certs {
		for _, n := range c.names {
			if t, ok := m[n]; !ok || c.notAfter.After(t) {
				m[n] = c.notAfter
			}
		}
	}
	return m
}
