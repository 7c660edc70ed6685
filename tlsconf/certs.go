package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// cert is one loaded certificate with the names it answers for.
type cert struct {
	tls      *tls.Certificate
	names    []string // lower case; may hold "*.example.com"
	notAfter time.Time
}

// certSet is an immutable set of certificates; the first is the default.
type certSet struct {
	certs  []cert
	byName map[string]*tls.Certificate
}

func loadFiles(files []CertFile) (*certSet, error) {
	var certs []tls.Certificate
	var errs []error
	for _, f := range files {
		c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("load %s and %s: %w", f.CertFile, f.KeyFile, err))
			continue
		}
		certs = append(certs, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return newCertSet(certs)
}

func newCertSet(certs []tls.Certificate) (*certSet, error) {
	set := &certSet{byName: map[string]*tls.Certificate{}}
	for i := range certs {
		c := &certs[i]
		leaf := c.Leaf
		if leaf == nil {
			var err error
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("parse certificate: %w", err)
			}
			c.Leaf = leaf
		}
		names := leafNames(leaf)
		set.certs = append(set.certs, cert{tls: c, names: names, notAfter: leaf.NotAfter})
		for _, n := range names {
			if _, taken := set.byName[n]; !taken { // earlier certificates win
				set.byName[n] = c
			}
		}
	}
	return set, nil
}

func leafNames(leaf *x509.Certificate) []string {
	var names []string
	for _, n := range leaf.DNSNames {
		names = append(names, strings.ToLower(n))
	}
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = append(names, strings.ToLower(leaf.Subject.CommonName))
	}
	return names
}

// lookup finds the certificate for an SNI name: exact names one, wild
// one whose wildcard covers the name one label deep.
func (s *certSet) lookup(name string) (exact, wild *tls.Certificate) {
	if name == "" {
		return nil, nil
	}
	exact = s.byName[name]
	if i := strings.IndexByte(name, '.'); i > 0 {
		wild = s.byName["*"+name[i:]]
	}
	return exact, wild
}

// fallback is the first certificate, for clients without SNI or with a
// name nothing covers; nil in an empty set.
func (s *certSet) fallback() *tls.Certificate {
	if len(s.certs) == 0 {
		return nil
	}
	return s.certs[0].tls
}

// sniName is the lookup key for a client's SNI: lower case, no final dot.
func sniName(sni string) string {
	return strings.TrimSuffix(strings.ToLower(sni), ".")
}
