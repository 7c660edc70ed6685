//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// mbsyncRC pulls INBOX from mailfront into a local maildir, trusting only
// the test root (SystemCertificates no).
const mbsyncRC = `IMAPAccount mailfront
Host localhost
Port %[1]s
User %[2]s
Pass "%[3]s"
SSLType %[4]s
SSLVersions TLSv1.2 TLSv1.3
CertificateFile %[5]s
SystemCertificates no

IMAPStore remote
Account mailfront

MaildirStore local
Path %[6]s/
Inbox %[6]s/INBOX

Channel inbox
Far :remote:INBOX
Near :local:
Create Near
Sync Pull
SyncState *
`

// tuid is the header line mbsync adds to every message it stores (it finds
// its own copies by it).
var tuid = regexp.MustCompile(`(?m)^X-TUID: \S+\n`)

// TestMbsync syncs the INBOX over IMAPS and over STARTTLS into a local
// maildir. mbsync stores Unix line ends and adds an X-TUID header; apart
// from those, every message must arrive byte for byte.
func TestMbsync(t *testing.T) {
	tool(t, "mbsync", "isync")
	e := setup(t)
	tests := []struct {
		name, sslType, addr string
	}{
		{"imaps", "IMAPS", e.mf.imaps},
		{"imap STARTTLS", "STARTTLS", e.mf.imap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sync := mbsyncTo(t, port(tt.addr), testUser, testPassword, tt.sslType, e.mf.caFile)
			var want [][]byte
			for _, m := range testMessages() {
				want = append(want, lf(m))
			}
			sameMessages(t, sync(len(want)), want)
			// A second run finds nothing new: the first one stored every
			// message exactly once.
			if got := sync(len(want)); len(got) != len(want) {
				t.Errorf("after a second sync: got %d messages, want %d", len(got), len(want))
			}
		})
	}
}

// mbsyncTo configures mbsync to pull INBOX from localhost:port (sslType
// IMAPS or STARTTLS), trusting caFile only, as user, into a local maildir
// of its own. Each call of the function it returns runs mbsync once,
// checks it saw want messages on the far side, and returns the messages
// stored locally, each with mbsync's one X-TUID line removed.
func mbsyncTo(t *testing.T, port, user, password, sslType, caFile string) func(want int) [][]byte {
	t.Helper()
	mbsync := tool(t, "mbsync", "isync")
	dir := t.TempDir()
	local := filepath.Join(dir, "mail")
	if err := os.Mkdir(local, 0o700); err != nil { // mbsync creates INBOX, not the store
		t.Fatal(err)
	}
	rc := filepath.Join(dir, "mbsyncrc")
	conf := fmt.Sprintf(mbsyncRC, port, user, password, sslType, caFile, local)
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(want int) [][]byte {
		t.Helper()
		r := runClient(t, nil, []string{"HOME=" + dir}, mbsync, "-c", rc, "-V", "inbox")
		if r.code != 0 {
			t.Fatalf("mbsync: got %s\nwant exit 0", r)
		}
		if w := fmt.Sprintf("far side: %d messages", want); !strings.Contains(string(r.stdout), w) {
			t.Errorf("got %s\nwant %q", r, w)
		}
		var got [][]byte
		for _, sub := range []string{"cur", "new"} {
			for _, m := range readDir(t, filepath.Join(local, "INBOX", sub)) {
				if n := len(tuid.FindAll(m, -1)); n != 1 {
					t.Errorf("got %d X-TUID lines in a stored message, want 1", n)
				}
				got = append(got, tuid.ReplaceAll(m, nil))
			}
		}
		return got
	}
}
