package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mailfront/mailfront/config"
	"github.com/mailfront/mailfront/internal/imapmem"
	"github.com/mailfront/mailfront/internal/testpki"
	"github.com/mailfront/mailfront/tlsconf"
)

// TestRunGuardAndAdmin runs the command with the guard (a small block
// threshold) and the admin endpoint: wrong passwords get the network
// blocked, a blocked network's next connection is closed before the TLS
// handshake, and /metrics, /guard, /readyz and /healthz show it.
func TestRunGuardAndAdmin(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	certFile, keyFile := ca.WriteLeaf(t, dir, "localhost")
	be, err := imapmem.Start("127.0.0.1:0", map[string]string{"alice": "wonderland"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	cfg := fmt.Sprintf(`tls:
  certificates: [{cert_file: %s, key_file: %s}]
listeners:
  - {name: imaps, protocol: imap, address: "127.0.0.1:0", tls: implicit, backend: %q}
guard:
  base_delay: 10ms
  max_delay: 20ms
  block: {failures: 2}
admin: {address: "127.0.0.1:0"}
shutdown: {drain: 500ms}
log: {format: json, level: info}
`, certFile, keyFile, be.Addr)
	path := filepath.Join(dir, "mailfront.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs, exit := newLogLines(t), make(chan int, 1)
	go func() { exit <- Main([]string{"run", "--config", path}, io.Discard, logs) }()
	addr := logs.wait("listening", 1)["address"].(string)
	adminURL := "http://" + logs.wait("admin listening", 1)["address"].(string)

	dial := func() (*tls.Conn, error) {
		return tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	}
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	ic := &imapConn{Conn: c, r: bufio.NewReader(c)}
	ic.expect(t, "* OK")
	for _, tag := range []string{"a", "b"} {
		ic.send(t, tag+" LOGIN alice wrong-"+tag) // distinct: a repeated password is a stale one and does not count
		ic.expect(t, tag+" NO [AUTHENTICATIONFAILED]")
	}
	c.Close()
	blocked := logs.wait("network blocked", 1)
	if blocked["network"] != "127.0.0.1/32" {
		t.Errorf("blocked %v, want 127.0.0.1/32", blocked["network"])
	}
	if c, err := dial(); err == nil {
		c.Close()
		t.Fatal("a blocked network completed a TLS handshake")
	}

	families := scrape(t, adminURL+"/metrics")
	for _, tt := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"mailfront_logins_total", map[string]string{"protocol": "imap", "result": "failed"}, 2},
		{"mailfront_connections_refused_total", map[string]string{"listener": "imaps", "reason": "blocked"}, 1},
		{"mailfront_guard_blocked_networks", nil, 1},
	} {
		if got := value(families, tt.family, tt.labels); got != tt.want {
			t.Errorf("%s%v: got %v, want %v", tt.family, tt.labels, got, tt.want)
		}
	}
	var snap struct {
		Blocked []struct {
			Network string `json:"network"`
		} `json:"blocked"`
	}
	if err := json.Unmarshal([]byte(get(t, adminURL+"/guard", 200)), &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Blocked) != 1 || snap.Blocked[0].Network != "127.0.0.1/32" {
		t.Errorf("/guard: got %+v, want 127.0.0.1/32 blocked", snap)
	}
	get(t, adminURL+"/healthz", 200)
	get(t, adminURL+"/readyz", 200)

	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if code := <-exit; code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: got %d %s, want %d", url, resp.StatusCode, body, want)
	}
	return string(body)
}

// scrape parses /metrics as Prometheus does.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(get(t, url, 200)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// value is the sample of family whose labels include labels (counter or
// gauge), or -1 when there is none.
func value(families map[string]*dto.MetricFamily, family string, labels map[string]string) float64 {
	f, ok := families[family]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return -1
}

// TestReadyReasons checks /readyz's checks one by one: an expired
// certificate, an ACME name without a certificate and a backend never
// reached each make it fail, and it names them.
func TestReadyReasons(t *testing.T) {
	ca := testpki.NewCA(t)
	certFile, keyFile := ca.WriteLeaf(t, t.TempDir(), "mail.example.com")
	store, err := tlsconf.New(tlsconf.Options{Certificates: []tlsconf.CertFile{{CertFile: certFile, KeyFile: keyFile}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	ends := newBackends(config.Limits{}, slog.New(slog.DiscardHandler), nil, nil)
	now := time.Now()
	if err := ready(cfg, store, ends, now); err != nil {
		t.Fatalf("fresh certificate, no backend: got %v, want ready", err)
	}
	ends.get(config.Listener{Protocol: "imap", Backend: "127.0.0.1:1143"})
	cfg.TLS.ACME = &config.ACME{Domains: []string{"imap.example.com"}}
	err = ready(cfg, store, ends, now.Add(400*24*time.Hour))
	for _, want := range []string{"no valid certificate for imap.example.com", "certificate for mail.example.com expired", "backend imap 127.0.0.1:1143 not reached since start"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to name %q", err, want)
		}
	}
}
