//go:build integration

package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// adminSection is an admin: section on a free loopback port, and that
// address.
func adminSection(t *testing.T) (yaml, addr string) {
	t.Helper()
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(t, 1)[0]))
	return fmt.Sprintf("admin: {address: %q}\n", addr), addr
}

// waitAdmin waits for mailfront's "admin listening" line.
func waitAdmin(t *testing.T, mf *customFront, addr string) {
	t.Helper()
	mf.log.wait(t, 0, regexp.MustCompile(`msg="admin listening" .*address=`+regexp.QuoteMeta(addr)), mf.exited)
}

// adminGet fetches path from the admin endpoint and returns the status
// code and body.
func adminGet(t *testing.T, addr, path string) (int, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, b
}

// guardState is the part of /guard the tests read.
type guardState struct {
	Blocked []struct {
		Network  string    `json:"network"`
		Until    time.Time `json:"until"`
		Failures int       `json:"failures"`
	} `json:"blocked"`
	Penalised []struct {
		Network     string    `json:"network"`
		Score       float64   `json:"score"`
		NextAttempt time.Time `json:"next_attempt"`
	} `json:"penalised"`
	Stats struct {
		DelaysApplied uint64 `json:"delays_applied"`
	} `json:"stats"`
}

// checkAdmin checks /healthz answers 200 and /readyz does once the
// certificate is in service and the backend reached.
func checkAdmin(t *testing.T, admin string) {
	t.Helper()
	if code, body := adminGet(t, admin, "/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz: got %d %s, want 200", code, body)
	}
	deadline := time.Now().Add(logTimeout)
	for {
		code, body := adminGet(t, admin, "/readyz")
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz: got %d %s, want 200", code, body)
		}
		time.Sleep(pollEvery)
	}
}

// guardGet reads /guard.
func guardGet(t *testing.T, addr string) guardState {
	t.Helper()
	code, body := adminGet(t, addr, "/guard")
	var g guardState
	if err := json.Unmarshal(body, &g); code != http.StatusOK || err != nil {
		t.Fatalf("GET /guard: got %d %s (%v), want 200 and JSON", code, body, err)
	}
	return g
}

// TestAdmin scrapes the admin endpoint after known traffic: /metrics
// passes promtool check metrics (Debian's prometheus package) and its
// counters equal what the test caused (logins by protocol and result,
// plaintext refusals, the block, the refused connection); /healthz and
// /readyz answer 200 with Dovecot up; /guard lists the blocked network.
func TestAdmin(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	needGuard(t)
	dv := startDovecotWith(t, dovecotOptions{NoAuthPenalty: true})
	adminYAML, admin := adminSection(t)
	mf := startFront(t, dv, frontSpec{yaml: "guard:\n  base_delay: 100ms\n  max_delay: 200ms\n  block: {failures: 3, window: 10m, duration: 15m}\n" + adminYAML})
	waitAdmin(t, mf, admin)
	e := &env{dv: dv, mf: mf.front}

	// Alive, and ready once both backends have been reached (probed at
	// start).
	checkAdmin(t, admin)

	// One good login per protocol, one plaintext refusal, then three
	// failures at once (IMAPS, IMAP STARTTLS, POP3 STLS; three passwords,
	// as the guard counts a repeated one once): the block.
	c := e.dialIMAP(t, false, nil)
	if err := c.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatalf("IMAPS login: %v", err)
	}
	c.Logout().Wait()
	p := e.pop3Client(t, false)
	if err := p.Login(testUser, testPassword); err != nil {
		t.Fatalf("POP3S login: %v", err)
	}
	p.Quit()
	w := dialWire(t, mf.imap)
	w.do(step{"", "* OK"})
	w.do(step{"a LOGIN " + testUser + " " + imapQuote(wrongPassword), "a NO"})
	errs := make(chan string, 3)
	go func() { errs <- wrongIMAPS(mf, mf.imaps, testUser, wrongPassword+" 1") }()
	go func() { errs <- wrongIMAPSTARTTLS(e, wrongPassword+" 2") }()
	go func() { errs <- wrongPOP3STLS(mf, wrongPassword+" 3") }()
	for range 3 {
		if got := <-errs; got != "" {
			t.Error(got)
		}
	}
	mf.log.wait(t, 0, regexp.MustCompile(`msg="network blocked" .*network=127\.0\.0\.1/32 `), mf.exited)
	refusedBeforeHandshake(t, mf, "127.0.0.1", mf.imaps)
	mf.log.wait(t, 0, regexp.MustCompile(`msg="connection refused" listener=`+lnIMAPS+` .*reason=blocked`), mf.exited)

	code, scrape := adminGet(t, admin, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: got %d, want 200\n%s", code, scrape)
	}
	if r := runClient(t, scrape, nil, promtool, "check", "metrics"); r.code != 0 {
		t.Errorf("promtool check metrics: %s", r)
	}
	for _, tt := range []struct {
		series string
		want   float64
	}{
		{`mailfront_logins_total{protocol="imap",result="ok"}`, 1},
		{`mailfront_logins_total{protocol="pop3",result="ok"}`, 1},
		{`mailfront_logins_total{protocol="imap",result="failed"}`, 2},
		{`mailfront_logins_total{protocol="pop3",result="failed"}`, 1},
		{`mailfront_logins_total{protocol="imap",result="backend_error"}`, 0},
		{`mailfront_plaintext_logins_refused_total{protocol="imap"}`, 1},
		{`mailfront_guard_blocked_networks`, 1},
		{`mailfront_connections_refused_total{listener="` + lnIMAPS + `",reason="blocked"}`, 1},
	} {
		got, ok := sample(scrape, tt.series)
		if !ok || got != tt.want {
			t.Errorf("%s: got %v (present: %v), want %v", tt.series, got, ok, tt.want)
		}
	}
	failed := len(lines(mf.log.String(), regexp.MustCompile(`msg="login failed" `)))
	if failed != 3 {
		t.Errorf("login failed lines: got %d, want 3 (as the counters)", failed)
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", scrape)
	}
	g := guardGet(t, admin)
	if len(g.Blocked) != 1 || g.Blocked[0].Network != "127.0.0.1/32" || g.Blocked[0].Failures != 3 {
		t.Errorf("GET /guard: blocked %+v, want 127.0.0.1/32 alone, with 3 failures", g.Blocked)
	}
}

// sample finds one series (name and labels, exactly as exposed) in a
// Prometheus text scrape and returns its value.
func sample(scrape []byte, series string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindSubmatch(scrape)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	return v, err == nil
}

// wrongIMAPSTARTTLS logs in over IMAP with STARTTLS with a wrong
// password and returns "" when the answer was NO [AUTHENTICATIONFAILED].
func wrongIMAPSTARTTLS(e *env, pass string) string {
	c, err := imapclient.DialStartTLS(e.mf.imap, &imapclient.Options{TLSConfig: e.mf.tlsConfig()})
	if err != nil {
		return "IMAP STARTTLS: " + err.Error()
	}
	defer c.Close()
	err = c.Login(testUser, pass).Wait()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAuthenticationFailed {
		return fmt.Sprintf("IMAP STARTTLS: got %v, want NO [AUTHENTICATIONFAILED]", err)
	}
	return ""
}
