package acmetest

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/mailfront/mailfront/internal/testpki"
)

const name = "mail.example.test"

// TestIssue obtains a certificate over http-01 with a real ACME client and
// checks the chain, the validity and the counters.
func TestIssue(t *testing.T) {
	ca := Start(t, Options{Resolver: startDNS(t), Validity: 30 * time.Second})
	solver := serveHTTP01(t, ca.HTTPPort())
	client := &acmez.Client{
		Client:           &acme.Client{Directory: ca.DirectoryURL(), HTTPClient: httpClient(t, ca)},
		ChallengeSolvers: map[string]acmez.Solver{acme.ChallengeTypeHTTP01: solver},
	}
	dir, err := client.GetDirectory(t.Context())
	if err != nil {
		t.Fatalf("get directory: %v", err)
	}
	if want := ca.srv.URL + newOrderPath; dir.NewOrder != want {
		t.Errorf("newOrder: got %s, want %s (Pebble's paths moved; fix count.go)", dir.NewOrder, want)
	}
	acct, err := newAccount(t, client, nil)
	if err != nil {
		t.Fatalf("new account: %v", err)
	}
	certs, err := client.ObtainCertificateForSANs(t.Context(), acct, testpki.NewKey(t), []string{name})
	if err != nil {
		t.Fatalf("obtain certificate: %v", err)
	}

	leaf := verify(t, ca, certs[0].ChainPEM)
	if got, want := leaf.NotAfter.Sub(leaf.NotBefore), 29*time.Second; got != want {
		t.Errorf("NotAfter-NotBefore: got %v, want %v (Validity 30s less Pebble's 1s)", got, want)
	}
	if got := solver.hits.Load(); got == 0 {
		t.Errorf("http-01 hits: got 0, want the VA to have fetched the key authorization")
	}
	if got := ca.Orders(); got != 1 {
		t.Errorf("Orders: got %d, want 1", got)
	}
	if got := ca.Finalized(); got != 1 {
		t.Errorf("Finalized: got %d, want 1", got)
	}
}

// verify checks chainPEM (leaf first) against IssuerRoots and returns the leaf.
func verify(t *testing.T, ca *CA, chainPEM []byte) *x509.Certificate {
	t.Helper()
	var chain []*x509.Certificate
	for block, rest := pem.Decode(chainPEM); block != nil; block, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("parse chain: %v", err)
		}
		chain = append(chain, c)
	}
	if len(chain) < 2 {
		t.Fatalf("chain: got %d certificates, want leaf and intermediate", len(chain))
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{DNSName: name, Roots: ca.IssuerRoots(), Intermediates: inter}
	if _, err := chain[0].Verify(opts); err != nil {
		t.Errorf("verify against IssuerRoots: %v", err)
	}
	return chain[0]
}

// TestSetDown checks that a down CA refuses connections without counting
// them and comes back on the same URL.
func TestSetDown(t *testing.T) {
	ca := Start(t, Options{})
	client := httpClient(t, ca)
	get := func() error {
		resp, err := client.Get(ca.DirectoryURL())
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET directory: got %s, want 200", resp.Status)
		}
		return nil
	}
	if err := get(); err != nil { // leaves an idle keep-alive connection
		t.Fatalf("GET directory while up: %v", err)
	}
	before := ca.Requests()

	ca.SetDown(true)
	if err := get(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("GET directory while down: got %v, want connection refused", err)
	}
	if got := ca.Requests(); got != before {
		t.Errorf("Requests while down: got %d, want %d", got, before)
	}

	ca.SetDown(false)
	if err := get(); err != nil {
		t.Fatalf("GET directory after SetDown(false): %v", err)
	}
	if got := ca.Requests(); got != before+1 {
		t.Errorf("Requests after coming back: got %d, want %d", got, before+1)
	}
}

// TestEAB checks that EAB keys make binding required and are accepted.
func TestEAB(t *testing.T) {
	mac := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	ca := Start(t, Options{EAB: map[string]string{"kid-1": mac}})
	client := &acmez.Client{Client: &acme.Client{Directory: ca.DirectoryURL(), HTTPClient: httpClient(t, ca)}}
	if _, err := newAccount(t, client, nil); err == nil {
		t.Errorf("new account without EAB: got success, want externalAccountRequired")
	}
	if _, err := newAccount(t, client, &acme.EAB{KeyID: "kid-1", MACKey: mac}); err != nil {
		t.Errorf("new account with EAB: %v", err)
	}
}

// TestPortsOutsideEphemeral checks that the ports the CA releases for a
// while come from outside the kernel's ephemeral range, where no other
// socket's bind(0) or connect() can take them meanwhile.
func TestPortsOutsideEphemeral(t *testing.T) {
	ca := Start(t, Options{})
	lo, hi := ephemeral()
	_, server, err := net.SplitHostPort(ca.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for what, port := range map[string]string{"http-01": strconv.Itoa(ca.HTTPPort()), "tls-alpn-01": strconv.Itoa(ca.TLSPort()), "server": server} {
		if p, _ := strconv.Atoi(port); p < firstPort || lo <= p && p <= hi {
			t.Errorf("%s port %s, want one from %d up outside %d-%d", what, port, firstPort, lo, hi)
		}
	}
}
