//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// fetchmailRC polls mailfront, verifying its certificate against the test
// root only, keeps the mail on the server, fetches all of it, and hands
// each message to an MDA script that stores it in a file. "set invisible"
// stops fetchmail adding its Received: line, so what arrives can be
// compared with what Dovecot stored.
const fetchmailRC = `set no syslog
set no bouncemail
set invisible
poll localhost with proto %[1]s service %[2]s
  user "%[3]s" there with password "%[4]s" is "root" here
  options %[5]s sslcertck sslcertfile "%[6]s" keep fetchall
  mda "%[7]s"
`

// mdaScript stores the message on its standard input in a new file.
const mdaScript = `#!/bin/sh
set -e
f=$(mktemp "%s/msg.XXXXXX")
cat > "$f"
`

// TestFetchmail runs fetchmail once per listener kind; it must retrieve
// every message with its content intact (fetchmail hands its MDA Unix line
// ends).
func TestFetchmail(t *testing.T) {
	tool(t, "fetchmail", "fetchmail")
	e := setup(t)
	tests := []struct {
		name, proto, addr string
		tls               string // fetchmail's TLS options
		upgrade           string // the upgrade command fetchmail must send
		untrusted         bool   // trust Debian's roots instead of the test root
	}{
		{"pop3s", "POP3", e.mf.pop3s, "ssl", "", false},
		// Without "ssl", sslproto asks for STLS and refuses to go on without it.
		{"pop3 STLS", "POP3", e.mf.pop3, "sslproto 'TLS1.2+'", "POP3> STLS", false},
		{"imaps", "IMAP", e.mf.imaps, "ssl", "", false},
		{"imap STARTTLS", "IMAP", e.mf.imap, "sslproto 'TLS1.2+'", " STARTTLS\n", false},
		// sslcertck is real: with roots that did not sign mailfront's
		// certificate, fetchmail must stop before logging in.
		{"pop3s untrusted root", "POP3", e.mf.pop3s, "ssl", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := e.mf.caFile
			if tt.untrusted {
				ca = systemRoots
			}
			r, out := fetchmailOnce(t, tt.proto, port(tt.addr), testUser, testPassword, tt.tls, ca)
			if tt.untrusted {
				if r.code == 0 || !strings.Contains(string(r.stderr), "certificate verif") {
					t.Errorf("fetchmail: got %s\nwant a failure to verify the certificate", r)
				}
				if got := readDir(t, out); len(got) != 0 {
					t.Errorf("got %d messages delivered, want none", len(got))
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("fetchmail: got %s\nwant exit 0", r)
			}
			// -v logs the dialogue: the STARTTLS/STLS upgrade, then TLS.
			log := string(r.stderr) + string(r.stdout)
			if want := fmt.Sprintf("%d messages for %s at localhost", len(testMessages()), testUser); !strings.Contains(log, want) {
				t.Errorf("got %s\nwant %q", r, want)
			}
			if tt.upgrade != "" && !strings.Contains(log, tt.upgrade) {
				t.Errorf("got %s\nwant the client to send %q", r, tt.upgrade)
			}
			if !strings.Contains(log, "SSL/TLS: using protocol TLSv1.") {
				t.Errorf("got %s\nwant a TLS session", r)
			}
			got := readDir(t, out)
			var want [][]byte
			for _, m := range testMessages() {
				want = append(want, lf(m))
			}
			sameMessages(t, got, want)
		})
	}
}

// fetchmailOnce runs fetchmail once against localhost:port with proto
// (POP3, IMAP) and the TLS options tlsOpts, trusting caFile only, as user;
// it keeps the mail on the server and delivers each message to a file of
// its own in the directory it returns.
func fetchmailOnce(t *testing.T, proto, port, user, password, tlsOpts, caFile string) (result, string) {
	t.Helper()
	fetchmail := tool(t, "fetchmail", "fetchmail")
	dir := t.TempDir()
	out := filepath.Join(dir, "delivered")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	mda := filepath.Join(dir, "mda.sh")
	if err := os.WriteFile(mda, []byte(fmt.Sprintf(mdaScript, out)), 0o755); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(dir, "fetchmailrc")
	conf := fmt.Sprintf(fetchmailRC, proto, port, user, password, tlsOpts, caFile, mda)
	// fetchmail refuses an rcfile others can read.
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runClient(t, nil, []string{"HOME=" + dir, "FETCHMAILHOME=" + dir}, fetchmail,
		"-f", rc, "--nodetach", "-d0", "--nosyslog", "-v",
		"--idfile", filepath.Join(dir, "fetchids"), "--pidfile", filepath.Join(dir, "fetchmail.pid"))
	return r, out
}

// readDir returns the contents of every file in dir.
func readDir(t *testing.T, dir string) [][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, ent := range ents {
		if ent.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// sameMessages checks got and want hold the same messages, in any order.
func sameMessages(t *testing.T, got, want [][]byte) {
	t.Helper()
	sortBytes := func(s [][]byte) {
		sort.Slice(s, func(i, j int) bool { return bytes.Compare(s[i], s[j]) < 0 })
	}
	got, want = append([][]byte(nil), got...), append([][]byte(nil), want...)
	sortBytes(got)
	sortBytes(want)
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("got a %d-byte message (%.120q...), want %d bytes (%.120q...) byte for byte", len(got[i]), got[i], len(want[i]), want[i])
		}
	}
}
