//go:build integration

package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestPython runs testdata/mailclient.py, Python's standard imaplib and
// poplib with ssl's default context (certificate and host name verified
// against the test root), over each listener. A login without TLS must be
// refused by mailfront with the protocol's code.
func TestPython(t *testing.T) {
	py := python(t)
	script, err := filepath.Abs("testdata/mailclient.py")
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t)
	msgs := testMessages()
	tests := []struct {
		mode    string
		addr    string
		msg     int    // UID or message number to fetch
		refused string // when set: the login must be refused with this in the error
	}{
		{mode: "imaps", addr: e.mf.imaps, msg: 2},
		{mode: "imaps", addr: e.mf.imaps, msg: 3},
		{mode: "imap-starttls", addr: e.mf.imap, msg: 1},
		{mode: "imap-starttls", addr: e.mf.imap, msg: 3},
		{mode: "pop3s", addr: e.mf.pop3s, msg: 2},
		{mode: "pop3s", addr: e.mf.pop3s, msg: 3},
		{mode: "pop3-stls", addr: e.mf.pop3, msg: 2},
		{mode: "imap-plaintext", addr: e.mf.imap, msg: 1, refused: "[PRIVACYREQUIRED]"},
		{mode: "pop3-plaintext", addr: e.mf.pop3, msg: 1, refused: "-ERR [AUTH]"},
	}
	for _, tt := range tests {
		name := tt.mode + " message " + strconv.Itoa(tt.msg)
		if tt.refused != "" {
			name = tt.mode + " login refused"
		}
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "message")
			mark := e.mf.log.size()
			r := runClient(t, nil, nil, py, script, tt.mode,
				"--host", "localhost", "--port", port(tt.addr), "--cafile", e.mf.caFile,
				"--user", testUser, "--password", testPassword,
				"--msg", strconv.Itoa(tt.msg), "--out", out)
			if tt.refused != "" {
				if r.code != 3 || !strings.Contains(string(r.stdout), tt.refused) {
					t.Fatalf("got %s\nwant exit 3 (login refused) with %q", r, tt.refused)
				}
				e.mf.log.wait(t, mark, regexp.MustCompile(`msg="plaintext login refused" .*user=`+testUser), e.mf.exited)
				return
			}
			if r.code != 0 {
				t.Fatalf("got %s\nwant exit 0", r)
			}
			if want := "count " + strconv.Itoa(len(msgs)) + "\n"; !strings.HasPrefix(string(r.stdout), want) {
				t.Errorf("got output %q, want it to start with %q", r.stdout, want)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if want := msgs[tt.msg-1]; !bytes.Equal(got, want) {
				t.Errorf("message %d: got %d bytes (%.80q...), want the %d bytes stored, byte for byte", tt.msg, len(got), got, len(want))
			}
		})
	}
}
