package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/mailfront/mailfront/acmedns"
	"github.com/mailfront/mailfront/config"
	"github.com/mailfront/mailfront/tlsconf"
	"github.com/mholt/acmez/v3"
)

// newStore builds the certificate store from the tls section: files,
// ACME, or both. It contacts no CA; Start does.
func newStore(c config.TLS, log *slog.Logger) (*tlsconf.Store, error) {
	opts := tlsconf.Options{MinVersion: tls.VersionTLS12, Log: log}
	if c.MinVersion == "1.3" {
		opts.MinVersion = tls.VersionTLS13
	}
	for _, f := range c.Certificates {
		opts.Certificates = append(opts.Certificates, tlsconf.CertFile{CertFile: f.CertFile, KeyFile: f.KeyFile})
	}
	if c.ACME != nil {
		a, err := acmeOptions(c.ACME, log)
		if err != nil {
			return nil, err
		}
		opts.ACME = a
	}
	store, err := tlsconf.New(opts)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	return store, nil
}

func acmeOptions(a *config.ACME, log *slog.Logger) (*tlsconf.ACME, error) {
	opts := &tlsconf.ACME{
		Domains:   a.Domains,
		Email:     a.Email,
		CA:        a.CA,
		EABKeyID:  a.EAB.KeyID,
		EABMACKey: a.EAB.MACKey,
		Storage:   a.Storage,
	}
	if a.CARoot != "" {
		pem, err := os.ReadFile(a.CARoot)
		if err != nil {
			return nil, fmt.Errorf("acme ca_root: %w", err)
		}
		opts.CARoots = x509.NewCertPool()
		if !opts.CARoots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme ca_root %s: no PEM certificate", a.CARoot)
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
