//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestCurl drives curl (libcurl with OpenSSL) through every listener:
// listing and fetching over IMAPS and POP3S, STARTTLS and STLS forced with
// --ssl-reqd, and plaintext attempts that must not log in. The URL names
// localhost and --resolve pins it to 127.0.0.1, so curl verifies the name
// a real client would.
func TestCurl(t *testing.T) {
	curl := tool(t, "curl", "curl")
	e := setup(t)
	msgs := testMessages()
	list := fmt.Sprintf("1 %d\r\n2 %d\r\n3 %d\r\n", len(msgs[0]), len(msgs[1]), len(msgs[2]))
	tests := []struct {
		name     string
		addr     string
		url      string // after scheme://localhost:port
		scheme   string
		args     []string // besides the common ones
		wantCode int
		want     []byte // exact standard output, when set
		contains string // a line standard output must contain, when set
	}{
		{name: "imaps list mailboxes", scheme: "imaps", addr: e.mf.imaps, url: "/", contains: `"." INBOX`},
		{name: "imaps search", scheme: "imaps", addr: e.mf.imaps, url: "/INBOX?ALL", contains: "* SEARCH 1 2 3"},
		{name: "imaps fetch UID 1", scheme: "imaps", addr: e.mf.imaps, url: "/INBOX;UID=1", want: msgs[0]},
		{name: "imaps fetch UID 2", scheme: "imaps", addr: e.mf.imaps, url: "/INBOX;UID=2", want: msgs[1]},
		{name: "imaps fetch 5 MB UID 3", scheme: "imaps", addr: e.mf.imaps, url: "/INBOX;UID=3", want: msgs[2]},
		{name: "imap STARTTLS fetch UID 2", scheme: "imap", addr: e.mf.imap, url: "/INBOX;UID=2", args: []string{"--ssl-reqd"}, want: msgs[1]},
		{name: "imap STARTTLS fetch 5 MB UID 3", scheme: "imap", addr: e.mf.imap, url: "/INBOX;UID=3", args: []string{"--ssl-reqd"}, want: msgs[2]},
		{name: "pop3s list", scheme: "pop3s", addr: e.mf.pop3s, url: "/", want: []byte(list)},
		{name: "pop3s RETR 2", scheme: "pop3s", addr: e.mf.pop3s, url: "/2", want: msgs[1]},
		{name: "pop3s RETR 5 MB", scheme: "pop3s", addr: e.mf.pop3s, url: "/3", want: msgs[2]},
		{name: "pop3 STLS list", scheme: "pop3", addr: e.mf.pop3, url: "/", args: []string{"--ssl-reqd"}, want: []byte(list)},
		{name: "pop3 STLS RETR 1", scheme: "pop3", addr: e.mf.pop3, url: "/1", args: []string{"--ssl-reqd"}, want: msgs[0]},
		// Without TLS mailfront offers no way to log in (LOGINDISABLED, no
		// AUTH=; CAPA without USER or SASL), so curl gives up: 67 is
		// CURLE_LOGIN_DENIED.
		{name: "imap without TLS", scheme: "imap", addr: e.mf.imap, url: "/INBOX;UID=1", wantCode: 67, want: []byte{}},
		{name: "pop3 without TLS", scheme: "pop3", addr: e.mf.pop3, url: "/1", wantCode: 67, want: []byte{}},
		// Verification is real: without the test root curl refuses the
		// certificate (60 is CURLE_PEER_FAILED_VERIFICATION).
		{name: "imaps untrusted root", scheme: "imaps", addr: e.mf.imaps, url: "/", args: []string{"--cacert", systemRoots}, wantCode: 60, want: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := port(tt.addr)
			args := []string{"-sS", "--max-time", "60",
				"--resolve", "localhost:" + p + ":127.0.0.1",
				"--cacert", e.mf.caFile,
				"-u", testUser + ":" + testPassword}
			args = append(args, tt.args...) // a later --cacert wins
			args = append(args, tt.scheme+"://localhost:"+p+tt.url)
			r := runClient(t, nil, nil, curl, args...)
			if r.code != tt.wantCode {
				t.Fatalf("curl %s: got exit %d, want %d\n%s", strings.Join(args, " "), r.code, tt.wantCode, r)
			}
			if tt.want != nil && !bytes.Equal(r.stdout, tt.want) {
				t.Errorf("got %d bytes (%.80q...), want %d bytes (%.80q...) byte for byte", len(r.stdout), r.stdout, len(tt.want), tt.want)
			}
			if tt.contains != "" && !strings.Contains(string(r.stdout), tt.contains) {
				t.Errorf("got output %q, want a line containing %q", clip(r.stdout), tt.contains)
			}
		})
	}
}

// systemRoots is Debian's CA bundle (package ca-certificates): real roots,
// none of which signed the test certificate.
const systemRoots = "/etc/ssl/certs/ca-certificates.crt"
