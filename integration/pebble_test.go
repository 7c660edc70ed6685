//go:build integration

package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/testpki"
)

// pebbleBin is Debian's Pebble (package pebble), Let's Encrypt's small
// ACME test server (RFC 8555).
const pebbleBin = "/usr/bin/pebble"

// pebble is a running Pebble: an ACME directory, a management interface
// that hands out the root of the certificates it issues, and a validation
// authority that checks challenges on the ports in its configuration and
// resolves names through the test's named.
type pebble struct {
	dirURL   string         // the ACME directory, https://127.0.0.1:port/dir
	serverCA string         // PEM file: the test CA that signed Pebble's own HTTPS certificate (acme.ca_root)
	httpPort int            // where its VA fetches http-01 responses
	tlsPort  int            // where its VA makes tls-alpn-01 handshakes
	rootFile string         // PEM file: the root of the certificates it issues
	rootPool *x509.CertPool // the same root, for Go clients
	log      logFile
	exited   chan struct{}
}

// pebbleConfig is Pebble's JSON configuration file (Pebble 2.4).
type pebbleConfig struct {
	Pebble struct {
		ListenAddress                  string `json:"listenAddress"`
		ManagementListenAddress        string `json:"managementListenAddress"`
		Certificate                    string `json:"certificate"`
		PrivateKey                     string `json:"privateKey"`
		HTTPPort                       int    `json:"httpPort"`
		TLSPort                        int    `json:"tlsPort"`
		OCSPResponderURL               string `json:"ocspResponderURL"`
		ExternalAccountBindingRequired bool   `json:"externalAccountBindingRequired"`
	} `json:"pebble"`
}

// startPebble runs Pebble on free loopback ports with an HTTPS certificate
// minted for the test (Debian's package ships none), validating challenges
// on httpPort and tlsPort and resolving names with the DNS server at
// dnsAddr. It waits until the management interface serves the issuing
// root, writes that root to a file, and stops Pebble when the test ends.
func startPebble(t *testing.T, dnsAddr string, httpPort, tlsPort int) *pebble {
	t.Helper()
	if _, err := os.Stat(pebbleBin); err != nil {
		t.Fatalf("%s not found (apt-get install pebble, or run integration/run): %v", pebbleBin, err)
	}
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	certFile, keyFile := ca.WriteLeaf(t, dir, "localhost", "127.0.0.1")
	ports := freePorts(t, 2)
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	mgmt := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	p := &pebble{
		dirURL:   "https://" + listen + "/dir",
		serverCA: filepath.Join(dir, "pebble-server-ca.pem"),
		httpPort: httpPort,
		tlsPort:  tlsPort,
		rootFile: filepath.Join(dir, "pebble-root.pem"),
		log:      logFile{filepath.Join(dir, "pebble.log")},
		exited:   make(chan struct{}),
	}
	if err := os.WriteFile(p.serverCA, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	var c pebbleConfig
	c.Pebble.ListenAddress, c.Pebble.ManagementListenAddress = listen, mgmt
	c.Pebble.Certificate, c.Pebble.PrivateKey = certFile, keyFile
	c.Pebble.HTTPPort, c.Pebble.TLSPort = httpPort, tlsPort
	conf, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	// Pebble reads its knobs from the environment, which startGroup's
	// child inherits: no random sleeps before validating, no nonce
	// rejected on purpose, and every order gets fresh authorizations so
	// each test really solves its challenges.
	for k, v := range map[string]string{"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"} {
		t.Setenv(k, v)
	}
	startGroup(t, "pebble", p.log.path, p.exited, func(*exec.Cmd) {
		if t.Failed() {
			t.Logf("pebble-config.json:\n%s", conf)
			t.Logf("pebble log:\n%s", p.log)
		}
	}, pebbleBin, "-config", confPath, "-dnsserver", dnsAddr)

	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}},
	}
	t.Cleanup(client.CloseIdleConnections)
	waitPort(t, listen, p.exited)
	waitPort(t, mgmt, p.exited)
	root := httpsGet(t, client, "https://"+mgmt+"/roots/0")
	if _, err := httpsGetErr(client, p.dirURL); err != nil {
		t.Fatalf("pebble's ACME directory: %v", err)
	}
	p.rootPool = x509.NewCertPool()
	if !p.rootPool.AppendCertsFromPEM(root) {
		t.Fatalf("pebble's /roots/0: got %q, want a PEM certificate", clip(root))
	}
	if err := os.WriteFile(p.rootFile, root, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// httpsGet fetches url, failing the test on an error or a status other
// than 200.
func httpsGet(t *testing.T, c *http.Client, url string) []byte {
	t.Helper()
	b, err := httpsGetErr(c, url)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func httpsGetErr(c *http.Client, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: got status %s, want 200 OK\n%s", url, resp.Status, clip(b))
	}
	return b, nil
}
