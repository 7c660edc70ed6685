//go:build integration

package integration

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// clientAddrListener is an implicit TLS listener with a client_address
// mode, in front of backend ("" for Dovecot's plain listener).
func clientAddrListener(name, protocol, mode, backend string) extraListener {
	return extraListener{name: name, protocol: protocol, tls: "implicit", backend: backend, options: "client_address: " + mode}
}

// urlFor is curl's URL for a login and a look at the mailbox through an
// implicit TLS listener of protocol.
func urlFor(protocol, addr string) string {
	if protocol == "pop3" {
		return "pop3s://" + addr + "/"
	}
	return "imaps://" + addr + "/INBOX?ALL"
}

// TestClientAddressID puts mailfront in front of a Dovecot that trusts it
// (login_trusted_networks = 127.0.0.0/8) and logs in with curl from
// 127.0.0.2 through listeners with client_address id (IMAP ID before the
// LOGIN, POP3 XCLIENT before USER), the default auto (Dovecot's IMAP
// lists ID, its POP3 greeting says [XCLIENT] to a trusted client) and,
// as the control, none. Dovecot's login line must say rip=127.0.0.2 for
// id and auto (and, for IMAP, lport= the mailfront port the client
// connected to, from x-connected-port), rip=127.0.0.1 for none.
//
// Then Dovecot's own auth penalty, left at its default: four wrong
// passwords at once from 127.0.0.3 through the id listener are Dovecot's
// penalty on 127.0.0.3, and the right password from 127.0.0.2 right after
// them logs in within promptLogin. The control: the same through the none
// listener (from 127.0.0.4, which mailfront's guard has not seen) is a
// penalty on mailfront's 127.0.0.1, and 127.0.0.2's right password is not
// answered within promptLogin (README: "Dovecot's penalty behind
// mailfront").
func TestClientAddressID(t *testing.T) {
	curl := tool(t, "curl", "curl")
	needGuard(t)
	needClientAddress(t)
	dv := startDovecotWith(t, dovecotOptions{TrustedNetworks: "127.0.0.0/8"})
	mf := startFront(t, dv, frontSpec{
		extra: []extraListener{
			clientAddrListener("it-id-imaps", "imap", "id", ""),
			clientAddrListener("it-id-pop3s", "pop3", "id", ""),
			clientAddrListener("it-none-imaps", "imap", "none", ""),
			clientAddrListener("it-none-pop3s", "pop3", "none", ""),
		},
		// Small delays: the guard answers a network's parallel failures
		// one penalty apart, and this test is about Dovecot's penalty.
		yaml: "guard: {base_delay: 100ms, max_delay: 200ms}\n",
	})

	t.Run("rip", func(t *testing.T) {
		for _, tt := range []struct {
			listener, protocol, addr, rip string
		}{
			{"it-id-imaps", "imap", mf.extra["it-id-imaps"], "127.0.0.2"},
			{"it-id-pop3s", "pop3", mf.extra["it-id-pop3s"], "127.0.0.2"},
			{lnIMAPS, "imap", mf.imaps, "127.0.0.2"},
			{lnPOP3S, "pop3", mf.pop3s, "127.0.0.2"},
			{"it-none-imaps", "imap", mf.extra["it-none-imaps"], "127.0.0.1"},
			{"it-none-pop3s", "pop3", mf.extra["it-none-pop3s"], "127.0.0.1"},
		} {
			t.Run(tt.listener, func(t *testing.T) {
				mark, mfMark := dv.log.size(), mf.log.size()
				curlOK(t, curl, mf.caFile, "127.0.0.2", urlFor(tt.protocol, tt.addr))
				l := waitDovecotLogin(t, dv, mark, tt.protocol)
				if l.rip != tt.rip {
					t.Errorf("Dovecot's login line %q: got rip=%s, want rip=%s", l.line, l.rip, tt.rip)
				}
				told := tt.rip != "127.0.0.1"
				// ID's x-connected-port: the port the client connected to.
				if tt.protocol == "imap" && told && l.lport != port(tt.addr) {
					t.Errorf("Dovecot's login line %q: got lport=%s, want lport=%s (mailfront's listener)", l.line, l.lport, port(tt.addr))
				}
				// x-session-id, XCLIENT SESSION: mailfront-<conn>.
				login := waitLine(t, mf.front, mfMark, "login", map[string]string{"listener": tt.listener, "remote": ipPort("127.0.0.2")})
				conn, _ := logAttr(login, "conn")
				if want := "mailfront-" + conn; told != (l.session == want) {
					t.Errorf("Dovecot's session=<%s>, mailfront's conn=%s: want session=<%s> exactly when Dovecot was told the client (%v)", l.session, conn, want, told)
				}
				t.Logf("Dovecot: %s", l.line[strings.Index(l.line, "Login: "):])
			})
		}
	})

	// The two halves at once (each waits out Dovecot's answers to four
	// failures, about 5 s): the penalties are on different addresses.
	t.Run("penalty", func(t *testing.T) {
		t.Run("per client", func(t *testing.T) {
			t.Parallel()
			took, reply := penaltyRound(t, dv, mf, mf.extra["it-id-imaps"], "127.0.0.3", "127.0.0.3", 5*time.Second)
			t.Logf("client_address id: right password from 127.0.0.2 after four failures from 127.0.0.3: %q in %v", reply, took.Round(time.Millisecond))
			if !strings.HasPrefix(reply, "a1 OK") || took > promptLogin {
				t.Errorf("right password from 127.0.0.2 after 127.0.0.3's failures: got %q after %v, want a1 OK within %v", reply, took, promptLogin)
			}
		})
		t.Run("shared without identity (control)", func(t *testing.T) {
			t.Parallel()
			took, reply := penaltyRound(t, dv, mf, mf.extra["it-none-imaps"], "127.0.0.4", "127.0.0.1", promptLogin+time.Second)
			t.Logf("client_address none: right password from 127.0.0.2 after four failures from 127.0.0.4: %q in %v", reply, took.Round(time.Millisecond))
			if strings.HasPrefix(reply, "a1 OK") && took <= promptLogin {
				t.Errorf("right password from 127.0.0.2 through the none listener: got %q after %v, want it held up by Dovecot's penalty on 127.0.0.1 (else this test cannot tell)", reply, took)
			}
		})
	})
}

// penaltyRound sends four wrong passwords at once from attacker through
// the implicit TLS IMAP listener addr, waits for their answers (and
// Dovecot's four mismatches, which its auth process must log for the
// address rip), then logs in with the right password from 127.0.0.2 and
// returns how long that took and its reply; the login waits at most wait.
func penaltyRound(t *testing.T, dv *dovecot, mf *customFront, addr, attacker, rip string, wait time.Duration) (time.Duration, string) {
	t.Helper()
	mark := dv.log.size()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, _, err := dialTLS(mf.front, attacker, addr, clientTimeout)
			if err != nil {
				t.Errorf("%s: %v", attacker, err)
				return
			}
			defer rc.close()
			reply, err := rc.imapLogin(testUser, fmt.Sprintf("%s %s %d", wrongPassword, attacker, i))
			if err != nil || !strings.HasPrefix(reply, "a1 NO [AUTHENTICATIONFAILED]") {
				t.Errorf("wrong password %d from %s: got %q (%v), want a1 NO [AUTHENTICATIONFAILED]", i, attacker, reply, err)
			}
		}()
	}
	wg.Wait()
	mismatch := regexp.MustCompile(`auth: Info: passwd-file\(` + testUser + `,` + regexp.QuoteMeta(rip) + `,.*\): Password mismatch`)
	deadline := time.Now().Add(logTimeout)
	for len(lines(dv.log.since(mark), mismatch)) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("Dovecot logged %d password mismatches for %s, want 4", len(lines(dv.log.since(mark), mismatch)), rip)
		}
		time.Sleep(pollEvery)
	}

	start := time.Now()
	rc, _, err := dialTLS(mf.front, "127.0.0.2", addr, wait)
	if err != nil {
		return time.Since(start), "connect: " + err.Error()
	}
	defer rc.close()
	reply, err := rc.imapLogin(testUser, testPassword)
	if err != nil {
		reply += " (" + err.Error() + ")"
	}
	return time.Since(start), reply
}

// TestClientAddressPROXY puts mailfront in front of Dovecot's haproxy =
// yes listeners (haproxy_trusted_networks = 127.0.0.0/8) with
// disable_plaintext_auth = yes, which lets a login through only on a
// connection Dovecot counts as secured. With client_address proxy-v2,
// curl's logins from 127.0.0.2 (IMAPS and POP3S) succeed, and Dovecot
// logs them rip=127.0.0.2, lport= mailfront's port, "secured": the
// header's PP2_TYPE_SSL said the client used TLS. With proxy-v1, which
// cannot say so, Dovecot still logs the real client (rip=127.0.0.2) but
// refuses the plaintext login: the control for "secured".
func TestClientAddressPROXY(t *testing.T) {
	curl := tool(t, "curl", "curl")
	needClientAddress(t)
	dv := startDovecotWith(t, dovecotOptions{HAProxyNetworks: "127.0.0.0/8", SecureAuthOnly: true})
	mf := startFront(t, dv, frontSpec{extra: []extraListener{
		clientAddrListener("it-pp2-imaps", "imap", "proxy-v2", dv.imapHAProxy),
		clientAddrListener("it-pp2-pop3s", "pop3", "proxy-v2", dv.pop3HAProxy),
		clientAddrListener("it-pp1-imaps", "imap", "proxy-v1", dv.imapHAProxy),
	}})

	for _, tt := range []struct{ listener, protocol string }{{"it-pp2-imaps", "imap"}, {"it-pp2-pop3s", "pop3"}} {
		t.Run(tt.listener, func(t *testing.T) {
			mark := dv.log.size()
			addr := mf.extra[tt.listener]
			curlOK(t, curl, mf.caFile, "127.0.0.2", urlFor(tt.protocol, addr))
			l := waitDovecotLogin(t, dv, mark, tt.protocol)
			if l.rip != "127.0.0.2" || l.secured != "secured" || l.lport != port(addr) {
				t.Errorf("Dovecot's login line %q: want rip=127.0.0.2, lport=%s (the header's destination), secured", l.line, port(addr))
			}
			t.Logf("Dovecot: %s", l.line[strings.Index(l.line, "Login: "):])
		})
	}
	t.Run("it-pp1-imaps", func(t *testing.T) {
		mark, mfMark := dv.log.size(), mf.log.size()
		r, _ := curlFrom(t, curl, mf.caFile, "127.0.0.2", urlFor("imap", mf.extra["it-pp1-imaps"]))
		if r.code == 0 {
			t.Errorf("curl through proxy-v1 to a Dovecot that wants TLS: got %s, want a refusal (v1 cannot say the client used TLS)", r)
		}
		l := dv.log.wait(t, mark, regexp.MustCompile(`imap-login: .*rip=127\.0\.0\.2, `), dv.exited)
		if strings.Contains(l, "Login: ") || strings.Contains(l, "secured") {
			t.Errorf("Dovecot's line %q: want the client refused, not secured", l)
		}
		t.Logf("Dovecot: %s", l[strings.Index(l, "imap-login: "):])
		t.Logf("curl: exit %d %s; mailfront: %q", r.code, strings.TrimSpace(string(r.stderr)),
			linesWith(mf.log.since(mfMark), "session end", map[string]string{"listener": "it-pp1-imaps"}))
	})
}

// TestClientAddressLoopback puts mailfront in front of an untrusted
// Dovecot on 127.0.0.1 with client_address loopback and the guard
// grouping IPv4 clients by /24: each client network gets its own source
// address in 127.0.0.0/8. curl logs in from 127.0.0.2 and 127.0.0.3 (one
// network) and 127.1.0.2 (another): Dovecot's rip= is the same for the
// first two, another for the third, never 127.0.0.1, and mailfront's
// login line names it (backend_source=). POP3 from 127.1.0.2 gets the
// same source as its IMAP. The control: the auto listener, with a
// Dovecot that does not trust mailfront, leaves rip=127.0.0.1.
func TestClientAddressLoopback(t *testing.T) {
	curl := tool(t, "curl", "curl")
	needGuard(t)
	needClientAddress(t)
	dv := startDovecot(t)
	mf := startFront(t, dv, frontSpec{
		extra: []extraListener{
			clientAddrListener("it-lo-imaps", "imap", "loopback", ""),
			clientAddrListener("it-lo-pop3s", "pop3", "loopback", ""),
		},
		yaml: "guard: {ipv4_prefix: 24}\n",
	})
	source := map[string]string{} // client and protocol to Dovecot's rip
	for _, tt := range []struct {
		local, listener, protocol, addr string
	}{
		{"127.0.0.2", "it-lo-imaps", "imap", mf.extra["it-lo-imaps"]},
		{"127.0.0.3", "it-lo-imaps", "imap", mf.extra["it-lo-imaps"]},
		{"127.1.0.2", "it-lo-imaps", "imap", mf.extra["it-lo-imaps"]},
		{"127.1.0.2", "it-lo-pop3s", "pop3", mf.extra["it-lo-pop3s"]},
		{"127.0.0.2", lnIMAPS, "imap", mf.imaps},
	} {
		name := tt.local + " " + tt.listener
		t.Run(name, func(t *testing.T) {
			mark, mfMark := dv.log.size(), mf.log.size()
			curlOK(t, curl, mf.caFile, tt.local, urlFor(tt.protocol, tt.addr))
			l := waitDovecotLogin(t, dv, mark, tt.protocol)
			source[name] = l.rip
			login := waitLine(t, mf.front, mfMark, "login", map[string]string{"listener": tt.listener, "remote": ipPort(tt.local)})
			bs, named := logAttr(login, "backend_source")
			t.Logf("client %s: Dovecot rip=%s, mailfront backend_source=%q", tt.local, l.rip, bs)
			if tt.listener == lnIMAPS {
				if l.rip != "127.0.0.1" || named {
					t.Errorf("control (auto, untrusted Dovecot): got rip=%s and login line %q, want rip=127.0.0.1 and no backend_source", l.rip, login)
				}
				return
			}
			a, err := netip.ParseAddr(l.rip)
			if err != nil || !netip.MustParsePrefix("127.0.0.0/8").Contains(a) || l.rip == "127.0.0.1" {
				t.Errorf("Dovecot's login line %q: got rip=%s, want a 127.0.0.0/8 address other than mailfront's 127.0.0.1", l.line, l.rip)
			}
			if bs != l.rip {
				t.Errorf("mailfront's login line %q: got backend_source=%q, want %s (Dovecot's rip)", login, bs, l.rip)
			}
		})
	}
	same := func(a, b string, want bool) {
		if (source[a] == source[b]) != want || source[a] == "" {
			t.Errorf("sources %s: %s and %s: %s; want them %s", a, source[a], b, source[b], map[bool]string{true: "equal", false: "different"}[want])
		}
	}
	same("127.0.0.2 it-lo-imaps", "127.0.0.3 it-lo-imaps", true)
	same("127.0.0.2 it-lo-imaps", "127.1.0.2 it-lo-imaps", false)
	same("127.1.0.2 it-lo-imaps", "127.1.0.2 it-lo-pop3s", true)
}
