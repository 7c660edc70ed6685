package pop3

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/pop3mem"
	"github.com/mailfront/mailfront/proxy"
)

// scriptedBackend serves every connection with script: "S: x" sends the
// line x, "C: x" reads a line that must start with x, "close" hangs up. A
// line that does not match fails the test: the fake is a tripwire for
// anything mailfront should not send.
func scriptedBackend(t *testing.T, script ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				runScript(t, c, script)
			}()
		}
	}()
	return ln.Addr().String()
}

func runScript(t *testing.T, c net.Conn, script []string) {
	r := bufio.NewReader(c)
	for _, step := range script {
		switch {
		case step == "close":
			return
		case strings.HasPrefix(step, "S: "):
			c.Write([]byte(step[3:] + "\r\n"))
		case strings.HasPrefix(step, "C: "):
			line, err := r.ReadString('\n')
			if err != nil {
				return // mailfront hung up: allowed
			}
			if line = strings.TrimRight(line, "\r\n"); !strings.HasPrefix(line, step[3:]) {
				if !strings.HasPrefix(line, "QUIT") {
					t.Errorf("backend got %q, want %q", line, step[3:])
				}
				return
			}
		}
	}
	r.ReadString('\n') // wait for mailfront's QUIT or hang-up
}

func TestBackendFailures(t *testing.T) {
	t.Parallel()
	login := []string{"S: +OK hi", "C: CAPA", "S: -ERR no CAPA here", "C: USER alice", "S: +OK", "C: PASS "}
	tests := []struct {
		name   string
		script []string
		want   string
	}{
		{"closes at once", []string{"close"}, "-ERR [SYS/TEMP] Backend unavailable"},
		{"greeting not POP3", []string{"S: * OK IMAP4rev1 ready"}, "-ERR [SYS/TEMP] Backend unavailable"},
		{"greeting -ERR", []string{"S: -ERR [SYS/TEMP] overloaded"}, "-ERR [SYS/TEMP] Backend unavailable"},
		{"garbage after USER", []string{"S: +OK hi", "C: CAPA", "S: -ERR", "C: USER alice", "S: what?"}, "-ERR [SYS/TEMP] Backend unavailable"},
		{"closes after USER", []string{"S: +OK hi", "C: CAPA", "S: -ERR", "C: USER alice", "close"}, "-ERR [SYS/TEMP] Backend unavailable"},
		{"endless CAPA", append([]string{"S: +OK hi", "C: CAPA", "S: +OK"}, repeat("S: X-CAP", maxCapaLines+1)...), "-ERR [SYS/TEMP] Backend unavailable"},
		{"SYS/TEMP at PASS", append(login, "S: -ERR [SYS/TEMP] try later"), "-ERR [SYS/TEMP] Backend unavailable"},
		{"SYS/PERM at PASS", append(login, "S: -ERR [SYS/PERM] mailbox unreadable"), "-ERR [SYS/PERM] Backend unavailable: its operator must act"},
		// Courier's pop3d when its authdaemon is down.
		{"Courier's temporary problem", append(login, "S: -ERR Temporary problem, please try again later"), "-ERR [SYS/TEMP] Backend unavailable"},
		// Cyrus with allowplaintext: no: USER is tried, refused, and
		// the password never sent.
		{"no login method", []string{"S: +OK hi", "C: CAPA", "S: +OK", "S: TOP", "S: UIDL", "S: SASL GSSAPI", "S: .",
			"C: USER alice", "S: -ERR [AUTH] USER command only available under a layer", "C: QUIT"},
			"-ERR [SYS/PERM] Backend unavailable: its operator must act"},
		// Dovecot behind proxy-v2 with disable_plaintext_auth: the
		// probe's CAPA (a LOCAL header) lists no USER, the login's
		// connection takes it; a wrong password there still counts.
		{"USER taken though not listed, wrong password", []string{"S: +OK hi", "C: CAPA", "S: +OK", "S: TOP", "S: .",
			"C: USER alice", "S: +OK", "C: PASS ", "S: -ERR [AUTH] Authentication failed."},
			"-ERR [AUTH] Authentication failed"},
		{"IN-USE at PASS", append(login, "S: -ERR [IN-USE] locked by pid 42"), "-ERR [IN-USE] Mailbox in use"},
		{"LOGIN-DELAY at PASS", append(login, "S: -ERR [LOGIN-DELAY] wait 900s"), "-ERR [LOGIN-DELAY] Login too soon"},
		{"backend text hidden", append(login, "S: -ERR [AUTH] user alice has password hint 'fluffy'"), "-ERR [AUTH] Authentication failed"},
		{"no code", append(login, "S: -ERR nope"), "-ERR [AUTH] Authentication failed"},
		{"USER refused", []string{"S: +OK hi", "C: CAPA", "S: -ERR", "C: USER alice", "S: -ERR no such user"}, "-ERR [AUTH] Authentication failed"},
		{"AUTH PLAIN refused", []string{"S: +OK hi", "C: CAPA", "S: +OK", "S: SASL PLAIN", "S: .", "C: AUTH PLAIN", "S: -ERR no"}, "-ERR [AUTH] Authentication failed"},
		{"AUTH PLAIN +OK early", []string{"S: +OK hi", "C: CAPA", "S: +OK", "S: SASL PLAIN", "S: .", "C: AUTH PLAIN", "S: +OK"}, "-ERR [SYS/TEMP] Backend unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startProxy(t, withBackendAddress(scriptedBackend(t, tt.script...)), withLoginTimeout(5*time.Second))
			w := f.tlsReady(t, "implicit")
			w.send("USER alice", "PASS "+alicePassword)
			w.expect("+OK send PASS")
			w.expect(tt.want)
			w.send("QUIT")
			w.expect("+OK mailfront signing off")
			// Backend trouble is never a failed password (ARCHITECTURE.md
			// invariant 8): fail2ban and the guard must not count it.
			if trouble := strings.Contains(tt.want, "[SYS/"); trouble {
				f.logs.WaitFor(t, 1, `msg="backend unavailable"`)
				if n := f.logs.Count(`msg="login failed"`); n != 0 {
					t.Errorf("backend trouble logged as %d failed logins:\n%s", n, f.logs)
				}
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestBackendDownThenBack: an unreachable backend gets -ERR [SYS/TEMP] at
// once, is not counted as a failed password, and the same session logs in
// once the backend is back (ARCHITECTURE.md invariant 8).
func TestBackendDownThenBack(t *testing.T) {
	t.Parallel()
	f := startProxy(t)
	f.down.Store(true)
	w := f.tlsReady(t, "implicit")
	for range proxy.DefaultAuthFailures + 1 {
		start := time.Now()
		w.send("USER alice", "PASS "+alicePassword)
		w.expect("+OK send PASS")
		w.expect("-ERR [SYS/TEMP] Backend unavailable")
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("refused backend answered after %v, want promptly", d)
		}
	}
	f.logs.WaitFor(t, 1, "backend unavailable", "user=alice")
	if n := f.logs.Count("login failed"); n != 0 {
		t.Fatalf("got %d 'login failed' lines for backend trouble, want 0", n)
	}
	f.down.Store(false)
	w.send("USER alice", "PASS "+alicePassword)
	w.expect("+OK send PASS")
	w.expect("+OK Logged in")
	w.send("QUIT")
	w.expect("+OK pop3mem signing off")
	w.closed()
}

// TestBackendNeverGreets: a backend that accepts and says nothing costs the
// client the login timeout, not more.
func TestBackendNeverGreets(t *testing.T) {
	t.Parallel()
	const login = 300 * time.Millisecond
	f := startProxy(t, withBackend(pop3mem.Options{Silent: true}), withLoginTimeout(login))
	w := f.tlsReady(t, "implicit")
	start := time.Now()
	w.send("USER alice", "PASS "+alicePassword)
	w.expect("+OK send PASS")
	w.expect("-ERR [SYS/TEMP] Backend unavailable")
	if d := time.Since(start); d < login || d > login+3*time.Second {
		t.Fatalf("answered after %v, want about the %v login timeout", d, login)
	}
	f.logs.WaitFor(t, 1, "backend unavailable", "read backend greeting")
}

// TestXCLIENT: the backend is told who the client is with XCLIENT before
// the login under client_address id, or auto when its greeting (Dovecot's
// "+OK [XCLIENT]", to trusted addresses only) or CAPA offers it; a refusal
// is logged once and the login goes on.
func TestXCLIENT(t *testing.T) {
	t.Parallel()
	const xclient = "C: XCLIENT ADDR=127.0.0.1 PORT="
	login := []string{"C: USER alice", "S: +OK", "C: PASS " + alicePassword, "S: +OK in"}
	capa := []string{"C: CAPA", "S: +OK", "S: USER", "S: .", "close"}
	capaX := []string{"C: CAPA", "S: +OK", "S: USER", "S: XCLIENT", "S: ."}
	script := func(parts ...[]string) []string {
		var s []string
		for _, p := range parts {
			s = append(s, p...)
		}
		return s
	}
	tests := []struct {
		name    string
		mode    proxy.ClientAddress
		script  []string
		refused bool
	}{
		{"auto, offered in the greeting", proxy.ClientAddressAuto,
			script([]string{"S: +OK [XCLIENT] Dovecot ready."}, capa[:4], []string{xclient, "S: +OK Updated"}, login), false},
		{"auto, offered in CAPA", proxy.ClientAddressAuto,
			script([]string{"S: +OK ready"}, capaX, []string{xclient, "S: +OK"}, login), false},
		{"auto, not offered", proxy.ClientAddressAuto,
			script([]string{"S: +OK ready"}, capa[:4], login), false},
		{"none, offered", proxy.ClientAddressNone,
			script([]string{"S: +OK [XCLIENT] ready"}, capaX, login), false},
		{"id, ignored as Dovecot does", proxy.ClientAddressID,
			script([]string{"S: +OK Dovecot ready."}, capa[:4], []string{xclient, "S: +OK You are not from trusted IP - ignoring"}, login), true},
		{"id, not offered and refused", proxy.ClientAddressID,
			script([]string{"S: +OK ready"}, capa[:4], []string{xclient, "S: -ERR You aren't allowed to use XCLIENT"}, login), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startProxy(t, withBackendAddress(scriptedBackend(t, tt.script...)), withLoginTimeout(5*time.Second), withClientAddress(tt.mode))
			w := f.tlsReady(t, "implicit")
			w.send("USER alice", "PASS "+alicePassword)
			w.expect("+OK send PASS")
			w.expect("+OK Logged in")
			const warning = "refused to be told the clients' addresses"
			if got := f.logs.Count(warning); tt.refused != (got == 1) {
				t.Errorf("got %d warnings %q, want %v", got, warning, tt.refused)
			}
		})
	}
}

// TestUSERTakenThoughNotListed: a backend whose CAPA lists neither USER
// nor SASL PLAIN still gets USER, and a login it takes works: Dovecot
// behind a PROXY v2 header saying the client used TLS, with
// disable_plaintext_auth, lists no USER to the capability probe (its
// header is LOCAL) and takes USER on the login's own connection.
func TestUSERTakenThoughNotListed(t *testing.T) {
	t.Parallel()
	backend := scriptedBackend(t, "S: +OK hi", "C: CAPA", "S: +OK", "S: TOP", "S: UIDL", "S: .",
		"C: USER alice", "S: +OK", "C: PASS ", "S: +OK Logged in.")
	f := startProxy(t, withBackendAddress(backend), withLoginTimeout(5*time.Second))
	w := f.tlsReady(t, "implicit")
	w.send("USER alice", "PASS "+alicePassword)
	w.expect("+OK send PASS")
	w.expect("+OK Logged in")
}
