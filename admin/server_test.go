package admin_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/admin"
	"github.com/mailfront/mailfront/internal/logtest"
	"github.com/prometheus/client_golang/prometheus"
)

// start runs an admin server on a free loopback port for the test.
func start(t *testing.T, opts admin.Options) *admin.Server {
	t.Helper()
	opts.Address = "127.0.0.1:0"
	opts.Log = logtest.New(t, slog.LevelDebug).Logger()
	s, err := admin.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type response struct {
	code  int
	ctype string
	allow string
	body  string
}

func do(t *testing.T, s *admin.Server, method, path string) response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), string(body)}
}

type snapshot struct {
	Blocked []string `json:"blocked"`
	Count   int      `json:"count"`
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	hits := prometheus.NewCounter(prometheus.CounterOpts{Name: "mailfront_test_hits_total", Help: "Test."})
	reg.MustRegister(hits)
	hits.Add(3)
	notReady := errors.New("no certificate for mail.example.org")
	guard := func() any { return snapshot{Blocked: []string{"192.0.2.0/24"}, Count: 1} }

	full := start(t, admin.Options{Gatherer: reg, Ready: func() error { return nil }, Guard: guard})
	unready := start(t, admin.Options{Ready: func() error { return notReady }})
	bare := start(t, admin.Options{})

	tests := []struct {
		name         string
		srv          *admin.Server
		method, path string
		code         int
		ctype        string // prefix
		body         string // substring
	}{
		{"healthz", full, "GET", "/healthz", 200, "text/plain", "ok\n"},
		{"healthz when unready", unready, "GET", "/healthz", 200, "text/plain", "ok\n"},
		{"healthz head", full, "HEAD", "/healthz", 200, "text/plain", ""},
		{"readyz", full, "GET", "/readyz", 200, "text/plain", "ok\n"},
		{"readyz without Ready", bare, "GET", "/readyz", 200, "text/plain", "ok\n"},
		{"readyz unready", unready, "GET", "/readyz", 503, "text/plain", "no certificate for mail.example.org\n"},
		{"metrics", full, "GET", "/metrics", 200, "text/plain; version=0.0.4", "mailfront_test_hits_total 3\n"},
		{"metrics without Gatherer", bare, "GET", "/metrics", 404, "", ""},
		{"guard", full, "GET", "/guard", 200, "application/json", "{\n  \"blocked\": [\n    \"192.0.2.0/24\"\n  ],\n  \"count\": 1\n}\n"},
		{"guard without Guard", bare, "GET", "/guard", 404, "", ""},
		{"unknown path", full, "GET", "/debug/pprof/", 404, "", ""},
		{"root", full, "GET", "/", 404, "", ""},
		{"path below an endpoint", full, "GET", "/healthz/x", 404, "", ""},
		{"post", full, "POST", "/readyz", 405, "", ""},
		{"put metrics", full, "PUT", "/metrics", 405, "", ""},
		{"delete guard", full, "DELETE", "/guard", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, tt.srv, tt.method, tt.path)
			if got.code != tt.code {
				t.Fatalf("%s %s: got %d %q, want %d", tt.method, tt.path, got.code, got.body, tt.code)
			}
			if !strings.HasPrefix(got.ctype, tt.ctype) {
				t.Errorf("%s %s: got Content-Type %q, want %q", tt.method, tt.path, got.ctype, tt.ctype)
			}
			if tt.body != "" && !strings.Contains(got.body, tt.body) {
				t.Errorf("%s %s: got body %q, want it to contain %q", tt.method, tt.path, got.body, tt.body)
			}
			if tt.code == 405 && got.allow != "GET, HEAD" {
				t.Errorf("%s %s: got Allow %q, want \"GET, HEAD\"", tt.method, tt.path, got.allow)
			}
		})
	}
}

func TestGuardJSONDecodes(t *testing.T) {
	t.Parallel()
	want := snapshot{Blocked: []string{"198.51.100.0/24", "2001:db8::/48"}, Count: 2}
	s := start(t, admin.Options{Guard: func() any { return want }})
	var got snapshot
	if err := json.Unmarshal([]byte(do(t, s, "GET", "/guard").body), &got); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Blocked, " ") != strings.Join(want.Blocked, " ") || got.Count != want.Count {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestGuardUnencodable(t *testing.T) {
	t.Parallel()
	s := start(t, admin.Options{Guard: func() any { return func() {} }})
	if got := do(t, s, "GET", "/guard"); got.code != http.StatusInternalServerError {
		t.Errorf("got %d %q, want 500", got.code, got.body)
	}
}

func TestCloseStops(t *testing.T) {
	t.Parallel()
	s, err := admin.Start(admin.Options{Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	// A keep-alive connection that is open when Close is called.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := c.Read(make([]byte, 512)); err != nil {
		t.Fatalf("read first answer: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound on failure, not a wait
	if _, err := io.ReadAll(c); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("open connection after close: %v", err)
	}
	if c2, err := net.Dial("tcp", addr); err == nil {
		c2.Close()
		t.Fatalf("dial %s after close: got a connection, want refused", addr)
	}
}

func TestStartFails(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name, addr, want string
	}{
		{"address taken", taken.Addr().String(), "listen admin " + taken.Addr().String()},
		{"no address", "", "no listen address"},
		{"bad address", "127.0.0.1:notaport", "listen admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := admin.Start(admin.Options{Address: tt.addr})
			if err == nil {
				s.Close()
				t.Fatalf("Start(%q): got no error, want one", tt.addr)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start(%q): got %q, want it to contain %q", tt.addr, err, tt.want)
			}
		})
	}
}
