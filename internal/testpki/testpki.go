// Package testpki mints certificate authorities and leaf certificates at run
// time for tests, benchmarks and the load tool, so that no key material is
// ever stored in the repository. It is not for production certificates.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throwaway certificate authority.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// New mints an ECDSA P-256 CA valid for a day.
func New() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "mailfront test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// NewCA is New for tests.
func NewCA(t testing.TB) *CA {
	t.Helper()
	ca, err := New()
	if err != nil {
		t.Fatalf("mint test CA: %v", err)
	}
	return ca
}

// Pool is a pool holding just this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue signs a leaf for names (DNS names or IP addresses) with key, valid
// from notBefore to notAfter.
func (ca *CA) Issue(key crypto.Signer, notBefore, notAfter time.Time, names ...string) (tls.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: first(names)},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// Leaf mints an ECDSA P-256 leaf for names, valid for a day.
func (ca *CA) Leaf(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	return ca.must(t, NewKey(t), names)
}

// NewKey mints an ECDSA P-256 key: for Issue, to give a leaf another
// validity or several leaves one key, and for tests that need a key of
// their own (an ACME account, a certificate request).
func NewKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("mint key: %v", err)
	}
	return key
}

// LeafRSA mints an RSA-2048 leaf for names, valid for a day.
func (ca *CA) LeafRSA(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return ca.must(t, key, names)
}

func (ca *CA) must(t testing.TB, key crypto.Signer, names []string) tls.Certificate {
	t.Helper()
	c, err := ca.Issue(key, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), names...)
	if err != nil {
		t.Fatalf("mint leaf %v: %v", names, err)
	}
	return c
}

// WriteLeaf mints an ECDSA leaf and writes its chain and key as PEM files in
// dir, returning their paths.
func (ca *CA) WriteLeaf(t testing.TB, dir string, names ...string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile, err := WritePair(dir, first(names), ca.Leaf(t, names...))
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// WritePair writes c's chain and key as PEM files named after base in dir.
func WritePair(dir, base string, c tls.Certificate) (certFile, keyFile string, err error) {
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return "", "", err
	}
	certFile = filepath.Join(dir, base+".crt.pem")
	keyFile = filepath.Join(dir, base+".key.pem")
	if err := os.WriteFile(certFile, chain, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

func first(names []string) string {
	if len(names) == 0 {
		return "localhost"
	}
	return names[0]
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}
