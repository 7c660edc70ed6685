//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Listener names of the tests with a PROXY header coming in.
const (
	lnPPIMAPS = "it-pp-imaps" // implicit TLS IMAP, behind HAProxy
	lnPPPOP3S = "it-pp-pop3s" // implicit TLS POP3, behind HAProxy
	lnPPIMAP  = "it-pp-imap"  // STARTTLS IMAP, trusting HAProxy too
)

// promptLogin bounds a login that no penalty may delay: on a quiet
// machine one takes 30 to 150 ms, and the guard's first penalty is
// 2 s (100 ms in TestHAProxy, whose users wait for no one).
const promptLogin = 2 * time.Second

// TestProxyHarness checks the client-address tests' tools without
// mailfront, so that a failure in those tests points at mailfront:
//
//   - HAProxy (Debian's 2.6) with send-proxy-v2 gives its server the
//     client's address and port (a connection from 127.0.0.2) in a v2
//     header, and starts every health check with a v2 LOCAL header. With
//     send-proxy (v1) its health checks carry the check connection's own
//     addresses ("PROXY TCP4 127.0.0.1 127.0.0.1 ..."), not PROXY UNKNOWN.
//   - Dovecot 2.3 with login_trusted_networks: its IMAP CAPABILITY lists
//     ID for everybody, and a trusted client's ID x-originating-ip,
//     x-connected-port and x-session-id become rip=, lport= and session=.
//     Its POP3 greeting says [XCLIENT] to a trusted client only (CAPA
//     never lists it), and XCLIENT ADDR sets rip=. From an untrusted
//     client both are ignored, and XCLIENT still answers +OK ("You are
//     not from trusted IP - ignoring").
//   - Dovecot's haproxy = yes listener takes a v2 header's source as rip=.
//     With disable_plaintext_auth = yes, a login succeeds there (logged
//     "secured") only when the header's PP2_TYPE_SSL says the client used
//     TLS; without it the greeting says LOGINDISABLED and LOGIN gets
//     NO [PRIVACYREQUIRED].
func TestProxyHarness(t *testing.T) {
	t.Run("haproxy", func(t *testing.T) {
		t.Parallel()
		harnessHAProxy(t)
	})
	t.Run("dovecot", func(t *testing.T) {
		t.Parallel()
		harnessDovecot(t)
	})
}

// harnessHAProxy puts HAProxy (v2 and v1 routes, with health checks) in
// front of a Go listener that reads the headers.
func harnessHAProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	// What the listener read, or why it could not; never t.Errorf from
	// these goroutines, which may outlive the test.
	type read struct {
		h   proxyHeader
		err error
	}
	headers := make(chan read, 256)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				h, err := readProxyHeader(bufio.NewReader(c))
				select {
				case headers <- read{h, err}:
				default:
				}
				if err == nil && h.command == "PROXY" {
					c.Write([]byte("hello\r\n"))
				}
			}()
		}
	}()
	hp := startHAProxy(t,
		haproxyRoute{name: "v2", server: ln.Addr().String(), send: "send-proxy-v2", check: true},
		haproxyRoute{name: "v1", server: ln.Addr().String(), send: "send-proxy", check: true})

	want := map[string]bool{} // what is still to be seen
	for _, name := range []string{"v2", "v1"} {
		c, err := dialFrom("127.0.0.2", hp.addr[name])
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if l, err := bufio.NewReader(c).ReadString('\n'); err != nil || l != "hello\r\n" {
			t.Errorf("through HAProxy's %s route: got %q (%v), want hello", name, l, err)
		}
		want[fmt.Sprintf("%s PROXY %s -> %s", name, c.LocalAddr(), hp.addr[name])] = true
		c.Close()
	}
	want["v2 LOCAL"] = true
	want["v1 check PROXY 127.0.0.1"] = true
	var seen []string
	deadline := time.After(logTimeout)
	for len(want) > 0 {
		select {
		case r := <-headers:
			if r.err != nil {
				t.Errorf("a header from HAProxy: %v", r.err)
				continue
			}
			h := r.h
			v := fmt.Sprintf("v%d", h.version)
			var k string
			switch {
			case h.command == "LOCAL":
				k = v + " LOCAL"
			case h.src.Addr() == netip.MustParseAddr("127.0.0.1"):
				k = v + " check PROXY 127.0.0.1"
			default:
				k = fmt.Sprintf("%s PROXY %s -> %s", v, h.src, h.dst)
			}
			seen = append(seen, k)
			delete(want, k)
		case <-deadline:
			t.Fatalf("headers from HAProxy: got %q, still want %v", seen, want)
		}
	}
}

// harnessDovecot talks to Dovecot as mailfront's client_address modes
// will: ID and XCLIENT from a trusted and an untrusted address, PROXY v2
// headers to the haproxy = yes listener.
func harnessDovecot(t *testing.T) {
	dv := startDovecotWith(t, dovecotOptions{TrustedNetworks: "127.0.0.1/32", HAProxyNetworks: "127.0.0.0/8", SecureAuthOnly: true})

	t.Run("imap ID trusted", func(t *testing.T) {
		mark := dv.log.size()
		w := dialLine(t, "127.0.0.1", dv.imapAddr, nil)
		if g := w.line(); !strings.Contains(g, " ID ") {
			t.Errorf("greeting %q: want ID among the capabilities", g)
		}
		w.do(step{`b ID ("x-originating-ip" "127.0.0.2" "x-originating-port" "40002" "x-connected-ip" "127.0.0.1" "x-connected-port" "993" "x-session-id" "it-harness-1")`, "b OK"})
		w.do(step{"c LOGIN " + testUser + " " + imapQuote(testPassword), "c OK"})
		l := waitDovecotLogin(t, dv, mark, "imap")
		if l.rip != "127.0.0.2" || l.lport != "993" || l.session != "it-harness-1" {
			t.Errorf("Dovecot's login line %q: want rip=127.0.0.2, lport=993, session=<it-harness-1> from the ID", l.line)
		}
	})
	t.Run("pop3 XCLIENT trusted", func(t *testing.T) {
		mark := dv.log.size()
		w := dialLine(t, "127.0.0.1", dv.pop3Addr, nil)
		if g := w.line(); !strings.HasPrefix(g, "+OK [XCLIENT] ") {
			t.Errorf("greeting to a trusted client: got %q, want +OK [XCLIENT] ...", g)
		}
		if capa := pop3Capa(w); slices.Contains(capa, "XCLIENT") {
			t.Errorf("CAPA %q: XCLIENT listed (the tests assume only the greeting says it)", capa)
		}
		w.do(step{"XCLIENT ADDR=127.0.0.2 PORT=40003 SESSION=it-harness-2", "+OK"})
		w.do(step{"USER " + testUser, "+OK"})
		w.do(step{"PASS " + testPassword, "+OK"})
		l := waitDovecotLogin(t, dv, mark, "pop3")
		if l.rip != "127.0.0.2" || l.session != "it-harness-2" {
			t.Errorf("Dovecot's login line %q: want rip=127.0.0.2, session=<it-harness-2> from XCLIENT", l.line)
		}
	})
	t.Run("untrusted ignored", func(t *testing.T) {
		mark := dv.log.size()
		w := dialLine(t, "127.0.0.5", dv.imapAddr, nil)
		w.line()
		w.do(step{`b ID ("x-originating-ip" "127.0.0.2" "x-originating-port" "40004")`, "b OK"})
		// Not trusted, not TLS, not rip = lip: not secured.
		w.do(step{"c LOGIN " + testUser + " " + imapQuote(testPassword), "c NO [PRIVACYREQUIRED]"})
		dv.log.wait(t, mark, regexp.MustCompile(`imap-login: .*rip=127\.0\.0\.5, `), dv.exited)

		p := dialLine(t, "127.0.0.5", dv.pop3Addr, nil)
		if g := p.line(); strings.Contains(g, "XCLIENT") {
			t.Errorf("greeting to an untrusted client: got %q, want no [XCLIENT]", g)
		}
		got := p.do(step{"XCLIENT ADDR=127.0.0.2 PORT=40005", "+OK"})
		t.Logf("XCLIENT from an untrusted client: %q", got)
		p.do(step{"USER " + testUser, "-ERR [AUTH]"})
		dv.log.wait(t, mark, regexp.MustCompile(`pop3-login: .*rip=127\.0\.0\.5, `), dv.exited)
		if got := lines(dv.log.since(mark), regexp.MustCompile(`rip=127\.0\.0\.2,`)); len(got) != 0 {
			t.Errorf("Dovecot took an untrusted client's word: %q", got)
		}
	})
	t.Run("haproxy listener", func(t *testing.T) {
		dst := mustAddrPort("127.0.0.1:993")
		for _, tt := range []struct {
			name, protocol, addr, src string
			ssl                       bool
		}{
			{"imap v2 with PP2_TYPE_SSL", "imap", dv.imapHAProxy, "127.0.0.2:40006", true},
			{"pop3 v2 with PP2_TYPE_SSL", "pop3", dv.pop3HAProxy, "127.0.0.2:40007", true},
			{"imap v2 without", "imap", dv.imapHAProxy, "127.0.0.3:40008", false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				mark := dv.log.size()
				var tlvs [][]byte
				if tt.ssl {
					tlvs = append(tlvs, sslTLV("TLSv1.3", "TLS_AES_128_GCM_SHA256"), tlv(pp2TypeAuthority, []byte("localhost")))
				}
				src := mustAddrPort(tt.src)
				w := dialLine(t, "127.0.0.1", tt.addr, proxyV2(src, dst, tlvs...))
				g := w.line()
				if tt.protocol == "pop3" {
					w.do(step{"USER " + testUser, "+OK"})
					w.do(step{"PASS " + testPassword, "+OK"})
					l := waitDovecotLogin(t, dv, mark, "pop3")
					if l.rip != src.Addr().String() || l.secured != "secured" {
						t.Errorf("Dovecot's login line %q: want rip=%s, secured", l.line, src.Addr())
					}
					return
				}
				if tt.ssl {
					w.do(step{"c LOGIN " + testUser + " " + imapQuote(testPassword), "c OK"})
					l := waitDovecotLogin(t, dv, mark, "imap")
					if l.rip != src.Addr().String() || l.lport != "993" || l.secured != "secured" {
						t.Errorf("Dovecot's login line %q: want rip=%s, lport=993, secured", l.line, src.Addr())
					}
					return
				}
				if !strings.Contains(g, "LOGINDISABLED") {
					t.Errorf("greeting without PP2_TYPE_SSL: got %q, want LOGINDISABLED", g)
				}
				w.do(step{"c LOGIN " + testUser + " " + imapQuote(testPassword), "c NO [PRIVACYREQUIRED]"})
				dv.log.wait(t, mark, regexp.MustCompile(`imap-login: .*rip=127\.0\.0\.3, `), dv.exited)
			})
		}
	})
}

// dialLine connects from local to addr, sends preface (a PROXY header,
// say) and returns a line client (plaintext_test.go's wire).
func dialLine(t *testing.T, local, addr string, preface []byte) *wire {
	t.Helper()
	c, err := dialFrom(local, addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, local, err)
	}
	t.Cleanup(func() { c.Close() })
	if len(preface) > 0 {
		if _, err := c.Write(preface); err != nil {
			t.Fatal(err)
		}
	}
	return &wire{t: t, c: c, r: bufio.NewReader(c)}
}

// pop3Capa sends CAPA and returns its lines.
func pop3Capa(w *wire) []string {
	w.t.Helper()
	w.do(step{"CAPA", "+OK"})
	var capa []string
	for l := w.line(); l != "."; l = w.line() {
		capa = append(capa, l)
	}
	return capa
}

// TestHAProxy puts Debian's HAProxy (TCP mode, send-proxy-v2 with health
// checks) in front of mailfront's implicit TLS IMAP and POP3 listeners,
// which trust 127.0.0.1 to send PROXY headers. Clients reach HAProxy
// from 127.0.0.2 (a user) and 127.0.0.3 (an attacker); mailfront sees
// every connection come from HAProxy's 127.0.0.1, and must serve each as
// the client the header names:
//
//   - HAProxy's health checks (v2 LOCAL) count as result="local" and are
//     no clients: no login lines, no via=, no guard entry.
//   - mailfront's log names the real client (remote=127.0.0.2 with the
//     client's own port, via=127.0.0.1:...).
//   - Four wrong passwords from 127.0.0.3 block 127.0.0.3/32, not
//     HAProxy: the attacker's next connection is closed before the TLS
//     handshake, while the user behind the same HAProxy logs in promptly,
//     and /guard lists 127.0.0.3 alone.
//   - A connection from the trusted 127.0.0.1 without a header is refused
//     (reason=missing); a header from 127.0.0.5, which the listener does
//     not trust, is refused (reason=untrusted) on the implicit TLS
//     listener without a byte, on a STARTTLS listener with a close; a
//     header sent to a listener without proxy_protocol too.
func TestHAProxy(t *testing.T) {
	curl := tool(t, "curl", "curl")
	needGuard(t)
	needClientAddress(t)
	dv := startDovecotWith(t, dovecotOptions{NoAuthPenalty: true})
	adminYAML, admin := adminSection(t)
	mf := startFront(t, dv, frontSpec{
		extra: []extraListener{
			{name: lnPPIMAPS, protocol: "imap", tls: "implicit", options: trustLocalBalancer},
			{name: lnPPPOP3S, protocol: "pop3", tls: "implicit", options: trustLocalBalancer},
			{name: lnPPIMAP, protocol: "imap", tls: "starttls", options: trustLocalBalancer},
		},
		yaml: "guard:\n  base_delay: 100ms\n  max_delay: 200ms\n  block: {failures: 4, window: 10m, duration: 15m}\n" + adminYAML,
	})
	waitAdmin(t, mf, admin)
	hp := startHAProxy(t,
		haproxyRoute{name: "imaps", server: mf.extra[lnPPIMAPS], send: "send-proxy-v2", check: true},
		haproxyRoute{name: "pop3s", server: mf.extra[lnPPPOP3S], send: "send-proxy-v2", check: true})
	balancer := map[string]string{"via": ipPort("127.0.0.1")}

	t.Run("health checks", func(t *testing.T) {
		for _, ln := range []string{lnPPIMAPS, lnPPPOP3S} {
			waitMetric(t, admin, headersSeries(ln, "local"), 2)
		}
	})

	t.Run("client named", func(t *testing.T) {
		mark := mf.log.size()
		rc, _, err := dialTLS(mf.front, "127.0.0.2", hp.addr["imaps"], clientTimeout)
		if err != nil {
			t.Fatalf("IMAPS through HAProxy from 127.0.0.2: %v", err)
		}
		defer rc.close()
		if reply, err := rc.imapLogin(testUser, testPassword); err != nil || !strings.HasPrefix(reply, "a1 OK") {
			t.Fatalf("LOGIN through HAProxy: got %q (%v), want a1 OK", reply, err)
		}
		// HAProxy keeps the client's port: the header names it exactly.
		client := rc.c.LocalAddr().String()
		waitLine(t, mf.front, mark, "login", map[string]string{
			"listener": lnPPIMAPS, "remote": regexp.QuoteMeta(client), "via": ipPort("127.0.0.1"), "user": testUser})

		curlOK(t, curl, mf.caFile, "127.0.0.2", "pop3s://"+hp.addr["pop3s"]+"/")
		waitLine(t, mf.front, mark, "login", map[string]string{
			"listener": lnPPPOP3S, "remote": ipPort("127.0.0.2"), "via": ipPort("127.0.0.1"), "user": testUser})
	})

	t.Run("attacker blocked, user served", func(t *testing.T) {
		mark := mf.log.size()
		// Four wrong passwords at once (distinct: the guard counts a
		// repeated one once), the fourth failure blocks 127.0.0.3.
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rc, _, err := dialTLS(mf.front, "127.0.0.3", hp.addr["imaps"], clientTimeout)
				if err != nil {
					t.Errorf("attacker's connection %d: %v", i, err)
					return
				}
				defer rc.close()
				reply, err := rc.imapLogin(testUser, fmt.Sprintf("%s %d", wrongPassword, i))
				if err != nil || !strings.HasPrefix(reply, "a1 NO [AUTHENTICATIONFAILED]") {
					t.Errorf("attacker's wrong password %d: got %q (%v), want a1 NO [AUTHENTICATIONFAILED]", i, reply, err)
				}
			}()
		}
		wg.Wait()
		waitLine(t, mf.front, mark, "network blocked", map[string]string{"network": `127\.0\.0\.3/32`})
		if got := linesWith(mf.log.since(mark), "login failed", nil); len(got) != 4 {
			t.Errorf("login failed lines: got %d, want 4", len(got))
		}
		for _, l := range linesWith(mf.log.since(mark), "login failed", nil) {
			if !attrsMatch(l, "login failed", map[string]string{"remote": ipPort("127.0.0.3"), "via": ipPort("127.0.0.1"), "listener": lnPPIMAPS}) {
				t.Errorf("login failed line %q: want remote=127.0.0.3:... via=127.0.0.1:... listener=%s", l, lnPPIMAPS)
			}
		}

		// fail2ban's filter, as operators install it, bans the attacker
		// named by the header, never the balancer (via=).
		logPath := filepath.Join(t.TempDir(), "mailfront.log")
		if err := os.WriteFile(logPath, []byte(mf.log.since(mark)), 0o644); err != nil {
			t.Fatal(err)
		}
		r := runClient(t, nil, nil, tool(t, "fail2ban-regex", "fail2ban"), "-o", "<ip>", logPath, fail2banFilter)
		if got := strings.Fields(string(r.stdout)); r.code != 0 || len(got) != 4 || slices.ContainsFunc(got, func(ip string) bool { return ip != "127.0.0.3" }) {
			t.Errorf("fail2ban-regex on the log: got %q (%s), want 127.0.0.3 four times", got, r)
		}

		local := refusedBeforeHandshake(t, mf, "127.0.0.3", hp.addr["imaps"])
		waitLine(t, mf.front, mark, "connection refused", map[string]string{
			"listener": lnPPIMAPS, "remote": regexp.QuoteMeta(local), "via": ipPort("127.0.0.1"), "reason": "blocked"})

		start := time.Now()
		rc, _, err := dialTLS(mf.front, "127.0.0.2", hp.addr["imaps"], clientTimeout)
		if err != nil {
			t.Fatalf("user from 127.0.0.2 through the same HAProxy: %v", err)
		}
		defer rc.close()
		reply, err := rc.imapLogin(testUser, testPassword)
		took := time.Since(start)
		if err != nil || !strings.HasPrefix(reply, "a1 OK") || took > promptLogin {
			t.Errorf("user from 127.0.0.2 while 127.0.0.3 is blocked: got %q (%v) after %v, want a1 OK within %v", reply, err, took, promptLogin)
		}
		t.Logf("user from 127.0.0.2 through HAProxy while 127.0.0.3 is blocked: logged in in %v", took.Round(time.Millisecond))

		g := guardGet(t, admin)
		var blocked, penalised []string
		for _, b := range g.Blocked {
			blocked = append(blocked, b.Network)
		}
		for _, p := range g.Penalised {
			penalised = append(penalised, p.Network)
		}
		if !slices.Equal(blocked, []string{"127.0.0.3/32"}) || slices.Contains(penalised, "127.0.0.1/32") || slices.Contains(penalised, "127.0.0.2/32") {
			t.Errorf("GET /guard: blocked %v, penalised %v; want 127.0.0.3/32 blocked alone, neither HAProxy's 127.0.0.1 nor 127.0.0.2 penalised", blocked, penalised)
		}
	})

	t.Run("header missing", func(t *testing.T) {
		mark := mf.log.size()
		local := refusedBeforeHandshake(t, mf, "127.0.0.1", mf.extra[lnPPIMAPS])
		waitLine(t, mf.front, mark, "PROXY header refused", map[string]string{
			"level": "WARN", "listener": lnPPIMAPS, "remote": regexp.QuoteMeta(local), "reason": "missing", "via": ""})
		waitMetric(t, admin, headersSeries(lnPPIMAPS, "missing"), 1)
	})

	t.Run("header untrusted", func(t *testing.T) {
		mark := mf.log.size()
		for _, tt := range []struct {
			name, listener, addr, local string
		}{
			{"v2 from 127.0.0.5, implicit TLS", lnPPIMAPS, mf.extra[lnPPIMAPS], "127.0.0.5"},
			{"v1 from 127.0.0.5, STARTTLS", lnPPIMAP, mf.extra[lnPPIMAP], "127.0.0.5"},
			{"v2 from 127.0.0.1, no proxy_protocol", lnIMAPS, mf.imaps, "127.0.0.1"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				c, err := dialFrom(tt.local, tt.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				// The header claims 192.0.2.7, which must appear nowhere.
				src, dst := mustAddrPort("192.0.2.7:4242"), mustAddrPort(tt.addr)
				hdr := proxyV2(src, dst)
				if strings.HasPrefix(tt.name, "v1") {
					hdr = []byte(proxyV1(src, dst))
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(hdr); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(c)
				if err != nil && !isReset(err) {
					t.Errorf("after an untrusted header: got %v, want the connection closed", err)
				}
				if implicit := tt.listener != lnPPIMAP; implicit && len(got) != 0 {
					t.Errorf("implicit TLS listener after an untrusted header: read %q, want not a byte", got)
				}
				t.Logf("%s: the client read %q, then the close", tt.name, got)
				remote := regexp.QuoteMeta(c.LocalAddr().String())
				waitLine(t, mf.front, mark, "PROXY header refused", map[string]string{
					"level": "WARN", "listener": tt.listener, "remote": remote, "reason": "untrusted"})
				// Not a TLS failure: a client speaking another protocol.
				waitLine(t, mf.front, mark, "session end", map[string]string{
					"listener": tt.listener, "remote": remote, "outcome": "protocol-error"})
			})
		}
		waitMetric(t, admin, headersSeries(lnPPIMAPS, "untrusted"), 1)
		waitMetric(t, admin, headersSeries(lnPPIMAP, "untrusted"), 1)
		if got := lines(mf.log.String(), regexp.MustCompile(`192\.0\.2\.7`)); len(got) != 0 {
			t.Errorf("mailfront took an untrusted header's word: %q", got)
		}
	})

	// Over the whole run: HAProxy's own connections (health checks) are
	// never a client with a via=, every login came through HAProxy, and
	// no login line names HAProxy's address as the client.
	logs := mf.log.String()
	for _, l := range strings.Split(logs, "\n") {
		remote, _ := logAttr(l, "remote")
		if _, via := logAttr(l, "via"); via && strings.HasPrefix(remote, "127.0.0.1:") {
			t.Errorf("line %q: the balancer's own connection with a via=", l)
		}
	}
	for _, msg := range []string{"login", "login failed"} {
		for _, l := range linesWith(logs, msg, nil) {
			if !attrsMatch(l, msg, balancer) || attrsMatch(l, msg, map[string]string{"remote": ipPort("127.0.0.1")}) {
				t.Errorf("line %q: want a client other than 127.0.0.1, via=127.0.0.1:...", l)
			}
		}
	}
	ok := metric(t, admin, headersSeries(lnPPIMAPS, "ok"))
	t.Logf("%s: %v headers ok, %v local (health checks)", lnPPIMAPS, ok, metric(t, admin, headersSeries(lnPPIMAPS, "local")))
	if ok < 6 {
		t.Errorf("%s: got %v, want at least 6 (the clients through HAProxy)", headersSeries(lnPPIMAPS, "ok"), ok)
	}
}

// isReset reports whether err is a connection reset (a close with unread
// data in the server's buffer).
func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// hydraHAProxyMaxRate bounds the guesses a minute hydra gets through
// HAProxy and the default guard: TestHydra measured 12 through the guard
// and 300 to 430 without it.
const hydraHAProxyMaxRate = 60

// TestHydraHAProxy runs hydra (16 tasks, TestHydra's word list) against
// IMAPS through HAProxy, from 127.0.0.1, for hydraWindow, while curl with
// the right password from 127.0.0.2 logs in through the same HAProxy
// before and three times during the attack. Every connection reaches
// mailfront from HAProxy; with the PROXY header the default guard
// penalises hydra's address alone, so the user's logins stay prompt
// (without it, they would wait out the attacker's penalty, up to 15 s).
// Dovecot trusts mailfront (login_trusted_networks) and logs the user's
// logins as rip=127.0.0.2 (client_address auto: ID); its own penalty is
// off, as in TestHydra, so the rate is the guard's.
func TestHydraHAProxy(t *testing.T) {
	hydra := tool(t, "hydra", "hydra")
	curl := tool(t, "curl", "curl")
	needGuard(t)
	needClientAddress(t)
	dv := startDovecotWith(t, dovecotOptions{NoAuthPenalty: true, TrustedNetworks: "127.0.0.0/8"})
	dir := t.TempDir()
	words, secrets := hydraWords(t, dir)
	mf := startFront(t, dv, frontSpec{secrets: secrets, extra: []extraListener{
		{name: lnPPIMAPS, protocol: "imap", tls: "implicit", options: trustLocalBalancer},
	}})
	hp := startHAProxy(t, haproxyRoute{name: "imaps", server: mf.extra[lnPPIMAPS], send: "send-proxy-v2", check: true})
	r := &hydraRun{name: "imap via haproxy", protocol: "imap", guard: true, mf: mf, addr: hp.addr["imaps"]}
	dvMark := dv.log.size()

	r.legitAt(curl, time.Now(), 0)
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.attack(t, hydra, words, dir)
	}()
	go func() {
		defer wg.Done()
		r.legitDuring(curl, start)
	}()
	wg.Wait()
	r.count(t)
	logHydraTable(t, []*hydraRun{r})

	if r.failures < 4 {
		t.Errorf("only %d guesses reached the backend in %v; the attack did not run (hydra output below)", r.failures, r.elapsed)
	}
	if r.found {
		t.Errorf("hydra found the password through HAProxy and the guard")
	}
	if r.perMinute() > hydraHAProxyMaxRate {
		t.Errorf("%.0f guesses/min through HAProxy, want at most %d", r.perMinute(), hydraHAProxyMaxRate)
	}
	for i, l := range append([]legitLogin{r.quiet}, r.legit...) {
		if l.res.code != 0 || l.took > promptLogin {
			t.Errorf("legitimate login %d from 127.0.0.2 through HAProxy: took %v, got %s, want exit 0 within %v", i, l.took, l.res, promptLogin)
		}
	}
	logs := r.mf.log.String()
	for _, l := range linesWith(logs, "login failed", nil) {
		if !attrsMatch(l, "login failed", map[string]string{"remote": ipPort("127.0.0.1"), "via": ipPort("127.0.0.1"), "listener": lnPPIMAPS}) {
			t.Errorf("hydra's failure %q: want remote=127.0.0.1:... via=127.0.0.1:...", l)
		}
	}
	if got := linesWith(logs, "login", map[string]string{"remote": ipPort("127.0.0.2"), "via": ipPort("127.0.0.1")}); len(got) != 1+len(r.legit) {
		t.Errorf("mailfront's login lines from 127.0.0.2 via HAProxy: got %d, want %d", len(got), 1+len(r.legit))
	}
	if got := lines(dv.log.since(dvMark), regexp.MustCompile(`imap-login: Info: Login: .* rip=127\.0\.0\.2, `)); len(got) != 1+len(r.legit) {
		t.Errorf("Dovecot's login lines with rip=127.0.0.2: got %d, want %d (the client's address through HAProxy, mailfront and ID)", len(got), 1+len(r.legit))
	}
	if t.Failed() {
		t.Logf("hydra output:\n%s", clip(r.out.Bytes()))
	}
}
