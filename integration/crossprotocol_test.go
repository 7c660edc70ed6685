//go:build integration

package integration

import (
	"regexp"
	"strings"
	"testing"
)

// TestCrossProtocol points real clients of other protocols at mailfront's
// mail ports, as a browser tricked into posting to a mail port would be
// (the ALPACA class of cross-protocol attacks): curl speaking HTTP to the
// IMAP and POP3 STARTTLS ports, and openssl s_client starting TLS on a
// plaintext port. mailfront must answer the first line with a BYE or
// -ERR and close (outcome protocol-error), never run it as a command, and
// keep serving; Dovecot must see nothing.
func TestCrossProtocol(t *testing.T) {
	curl := tool(t, "curl", "curl")
	openssl := tool(t, "openssl", "openssl")
	e := setup(t)
	tests := []struct {
		name     string
		listener string
		run      func(addr string) result
		reason   string // in the session end line
	}{
		{"http to imap", lnIMAP, func(addr string) result {
			return runClient(t, nil, nil, curl, "-sS", "--max-time", "20", "--http1.1", "-d", "a LOGIN "+testUser+" x", "http://"+addr+"/")
		}, "the client speaks http"},
		{"http to pop3", lnPOP3, func(addr string) result {
			return runClient(t, nil, nil, curl, "-sS", "--max-time", "20", "--http1.1", "http://"+addr+"/")
		}, "the client speaks http"},
		{"tls to plaintext imap", lnIMAP, func(addr string) result {
			return runClient(t, nil, nil, openssl, "s_client", "-connect", addr, "-brief")
		}, "the client speaks tls"},
		{"tls to plaintext pop3", lnPOP3, func(addr string) result {
			return runClient(t, nil, nil, openssl, "s_client", "-connect", addr, "-brief")
		}, "the client speaks tls"},
	}
	addrs := map[string]string{lnIMAP: e.mf.imap, lnPOP3: e.mf.pop3}
	dvMark := e.dv.log.size()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mark := e.mf.log.size()
			r := tt.run(addrs[tt.listener])
			if r.code == 0 {
				t.Errorf("the client succeeded against a mail port:\n%s", r)
			}
			line := e.mf.sessionEnd(t, mark, tt.listener, "protocol-error")
			if !strings.Contains(line, tt.reason) {
				t.Errorf("session end: got %q, want the reason %q", line, tt.reason)
			}
			if strings.Contains(e.mf.log.since(mark), `msg="plaintext login refused"`) {
				t.Error("the HTTP body was read as a command")
			}
		})
	}
	// Dovecot saw no login attempt: at most mailfront's capability probes.
	for _, l := range loginLines(e.dv.log.since(dvMark)) {
		if !strings.Contains(l, "no auth attempts") {
			t.Errorf("Dovecot's log after the cross-protocol attempts: got %q, want no login", l)
		}
	}
	// Still serving: a real client logs in.
	r := runClient(t, nil, nil, curl, "-sS", "--max-time", "30", "--resolve", "localhost:"+port(e.mf.imaps)+":127.0.0.1",
		"--cacert", e.mf.caFile, "-u", testUser+":"+testPassword, "imaps://localhost:"+port(e.mf.imaps)+"/INBOX?ALL")
	if r.code != 0 || !regexp.MustCompile(`\* SEARCH 1 2 3`).Match(r.stdout) {
		t.Errorf("curl IMAPS after the cross-protocol attempts:\n%s", r)
	}
}
