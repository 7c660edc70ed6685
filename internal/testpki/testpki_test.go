package testpki

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"
)

// TestLeaves checks that every kind of leaf verifies for its names against
// the CA's pool, and only against it.
func TestLeaves(t *testing.T) {
	t.Parallel()
	ca, other := NewCA(t), NewCA(t)
	tests := []struct {
		name   string
		leaf   tls.Certificate
		verify string // a name the leaf holds
		rsa    bool
	}{
		{"ecdsa", ca.Leaf(t, "mail.example.com", "192.0.2.7"), "mail.example.com", false},
		{"ecdsa by address", ca.Leaf(t, "mail.example.com", "192.0.2.7"), "192.0.2.7", false},
		{"rsa", ca.LeafRSA(t, "rsa.example.net"), "rsa.example.net", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, isRSA := tt.leaf.PrivateKey.(*rsa.PrivateKey); isRSA != tt.rsa {
				t.Errorf("got key %T, want RSA %v", tt.leaf.PrivateKey, tt.rsa)
			}
			if len(tt.leaf.Certificate) != 2 {
				t.Errorf("got a chain of %d, want leaf and CA", len(tt.leaf.Certificate))
			}
			opts := x509.VerifyOptions{DNSName: tt.verify, Roots: ca.Pool()}
			if _, err := tt.leaf.Leaf.Verify(opts); err != nil {
				t.Errorf("verify %s against the CA: %v", tt.verify, err)
			}
			opts.Roots = other.Pool()
			if _, err := tt.leaf.Leaf.Verify(opts); err == nil {
				t.Errorf("verify %s against another CA: got nil, want an error", tt.verify)
			}
		})
	}
}

// TestIssueValidity checks that Issue keeps the validity and key it is
// given, so that tests can mint certificates about to expire or expired.
func TestIssueValidity(t *testing.T) {
	t.Parallel()
	ca := NewCA(t)
	key := NewKey(t)
	notBefore, notAfter := time.Now().Add(-48*time.Hour).Truncate(time.Second), time.Now().Add(-time.Hour).Truncate(time.Second)
	c, err := ca.Issue(key, notBefore, notAfter, "expired.example")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Leaf.NotBefore.Equal(notBefore) || !c.Leaf.NotAfter.Equal(notAfter) {
		t.Errorf("got validity %v to %v, want %v to %v", c.Leaf.NotBefore, c.Leaf.NotAfter, notBefore, notAfter)
	}
	if pub, ok := c.Leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(key.Public()) {
		t.Error("the leaf does not hold the key it was issued for")
	}
	if NewKey(t).Equal(key) {
		t.Error("NewKey gave the same key twice")
	}
}

// TestWriteLeaf checks that the files WriteLeaf writes load as a key pair.
func TestWriteLeaf(t *testing.T) {
	t.Parallel()
	ca := NewCA(t)
	certFile, keyFile := ca.WriteLeaf(t, t.TempDir(), "mail.example.com")
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 || c.Leaf.DNSNames[0] != "mail.example.com" {
		t.Errorf("loaded a chain of %d for %v, want leaf and CA for mail.example.com", len(c.Certificate), c.Leaf.DNSNames)
	}
}
