//go:build integration

package integration

import (
	"bytes"
	"crypto/tls"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mailfront/mailfront/internal/testpki"
)

// sClient runs openssl s_client against addr with -brief (the handshake
// summary goes to standard error, what the server sends to standard
// output) and -ign_eof (it stays until the server closes, so typed
// commands get their replies).
func sClient(t *testing.T, stdin string, addr string, args ...string) result {
	t.Helper()
	openssl := tool(t, "openssl", "openssl")
	all := append([]string{"s_client", "-brief", "-ign_eof", "-crlf", "-connect", addr, "-servername", "localhost"}, args...)
	return runClient(t, []byte(stdin), nil, openssl, all...)
}

// What s_client types to end a session, so that it never waits for a
// server's idle timeout.
const (
	imapQuit = "q LOGOUT\n"
	pop3Quit = "QUIT\n"
)

// legacyArgs make Debian's OpenSSL 3 (MinProtocol TLSv1.2 and security
// level 2 in /etc/ssl/openssl.cnf) willing to speak TLS 1.0 and 1.1 at all.
var legacyArgs = []string{"-cipher", "DEFAULT@SECLEVEL=0"}

// TestOpenSSLVersions offers each TLS version to both implicit TLS
// listeners. TLS 1.0 and 1.1 must be refused by mailfront itself: the
// client reports the server's protocol_version alert (70), and the same
// command completes against a server that does speak TLS 1.0 and 1.1 (the
// control below), so the client really offered them.
func TestOpenSSLVersions(t *testing.T) {
	e := setup(t)
	legacy := startLegacyTLSServer(t)
	tests := []struct {
		listener, addr, greeting, quit string
	}{
		{lnIMAPS, e.mf.imaps, "* OK ", imapQuit},
		{lnPOP3S, e.mf.pop3s, "+OK ", pop3Quit},
	}
	versions := []struct {
		flag    string
		refused bool
	}{
		{"-tls1", true},
		{"-tls1_1", true},
		{"-tls1_2", false},
		{"-tls1_3", false},
	}
	for _, tt := range tests {
		for _, v := range versions {
			t.Run(tt.listener+" "+v.flag, func(t *testing.T) {
				args := append([]string{v.flag, "-CAfile", e.mf.caFile, "-verify_return_error", "-verify_hostname", "localhost"}, legacyArgs...)
				mark := e.mf.log.size()
				r := sClient(t, tt.quit, tt.addr, args...)
				if !v.refused {
					if r.code != 0 || !strings.Contains(string(r.stderr), "Verification: OK") || !strings.HasPrefix(string(r.stdout), tt.greeting) {
						t.Fatalf("got %s\nwant exit 0, Verification: OK and a greeting starting %q", r, tt.greeting)
					}
					return
				}
				if r.code == 0 || !strings.Contains(string(r.stderr), "alert protocol version") {
					t.Fatalf("got %s\nwant a failed handshake with the server's protocol_version alert", r)
				}
				if len(r.stdout) != 0 {
					t.Errorf("got %q from the server, want nothing", r.stdout)
				}
				e.mf.sessionEnd(t, mark, tt.listener, "tls-failed")
				// Control: the identical client offer completes a handshake
				// with a server that allows the version.
				if c := sClient(t, "", legacy.addr, v.flag, "-CAfile", legacy.caFile, "-verify_return_error", "-verify_hostname", "localhost", legacyArgs[0], legacyArgs[1]); c.code != 0 {
					t.Fatalf("control: %s against a TLS 1.0/1.1 server: got %s\nwant exit 0: the client does not offer the version, so the refusal above proves nothing", v.flag, c)
				}
			})
		}
	}
}

// legacyServer is a TLS server that speaks only TLS 1.0 and 1.1, each
// connection handshaken and closed.
type legacyServer struct {
	addr, caFile string
}

func startLegacyTLSServer(t *testing.T) legacyServer {
	t.Helper()
	ca := testpki.NewCA(t)
	dir := t.TempDir()
	s := legacyServer{caFile: dir + "/legacy-ca.pem"}
	if err := os.WriteFile(s.caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{ca.LeafRSA(t, "localhost")},
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   tls.VersionTLS11,
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	s.addr = ln.Addr().String()
	return s
}

// TestOpenSSLStartTLS upgrades with s_client's -starttls imap and -starttls
// pop3, verifying the certificate, then types a whole session in one go:
// mailfront must log in, hand the pipelined commands to Dovecot once, and
// relay the replies untouched (POP3's dot-stuffing included).
func TestOpenSSLStartTLS(t *testing.T) {
	e := setup(t)
	msg := testMessages()[1]
	tests := []struct {
		name, proto, addr string
		typed             string
		want              []string // in order in standard output
	}{
		{
			name: "imap", proto: "imap", addr: e.mf.imap,
			typed: "a1 LOGIN " + testUser + " \"" + testPassword + "\"\n" +
				"a2 SELECT INBOX\n" +
				"a3 UID FETCH 2 (BODY.PEEK[])\n" +
				"a4 LOGOUT\n",
			want: []string{
				"a1 OK ",
				"* 3 EXISTS\r\n",
				"a2 OK ",
				"BODY[] {" + strconv.Itoa(len(msg)) + "}\r\n" + string(msg) + ")\r\n",
				"a3 OK ",
				"* BYE",
				"a4 OK ",
			},
		},
		{
			name: "pop3", proto: "pop3", addr: e.mf.pop3,
			typed: "USER " + testUser + "\n" +
				"PASS " + testPassword + "\n" +
				"STAT\n" +
				"RETR 2\n" +
				"QUIT\n",
			want: []string{
				"+OK ",
				"+OK ",
				"+OK 3 ",
				"+OK ",
				// On the wire, as Dovecot sent it: dot-stuffed.
				string(bytes.ReplaceAll(msg, []byte("\r\n."), []byte("\r\n.."))) + ".\r\n",
				"+OK ",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sClient(t, tt.typed, tt.addr, "-starttls", tt.proto, "-CAfile", e.mf.caFile, "-verify_return_error", "-verify_hostname", "localhost")
			if r.code != 0 || !strings.Contains(string(r.stderr), "Verification: OK") {
				t.Fatalf("got %s\nwant exit 0 and Verification: OK", r)
			}
			rest := string(r.stdout)
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("got output %q\nwant %q next", clip([]byte(rest)), clip([]byte(w)))
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestOpenSSLVerify checks the certificate chain and name as a client
// verifies them: trusted with the test root, refused without it or for
// another name.
func TestOpenSSLVerify(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name     string
		listener string
		addr     string
		quit     string
		args     []string
		ok       bool
		want     string // in standard error
		alert    string // a refusal: the alert mailfront's log names
	}{
		{"imaps test root", lnIMAPS, e.mf.imaps, imapQuit, []string{"-CAfile", e.mf.caFile, "-verify_hostname", "localhost"}, true, "Verification: OK", ""},
		{"pop3s test root", lnPOP3S, e.mf.pop3s, pop3Quit, []string{"-CAfile", e.mf.caFile, "-verify_hostname", "localhost"}, true, "Verification: OK", ""},
		{"imaps test root, IP address", lnIMAPS, e.mf.imaps, imapQuit, []string{"-CAfile", e.mf.caFile, "-verify_ip", "127.0.0.1"}, true, "Verification: OK", ""},
		{"imap STARTTLS test root", lnIMAP, e.mf.imap, imapQuit, []string{"-starttls", "imap", "-CAfile", e.mf.caFile, "-verify_hostname", "localhost"}, true, "Verification: OK", ""},
		{"pop3 STLS test root", lnPOP3, e.mf.pop3, pop3Quit, []string{"-starttls", "pop3", "-CAfile", e.mf.caFile, "-verify_hostname", "localhost"}, true, "Verification: OK", ""},
		// OpenSSL sends the alert refusing the certificate unencrypted
		// under TLS 1.3, which crypto/tls alone reports as "bad record
		// MAC"; mailfront's log names the alert.
		{"imaps system roots", lnIMAPS, e.mf.imaps, imapQuit, []string{"-CAfile", systemRoots, "-verify_hostname", "localhost"}, false, "certificate verify failed",
			"remote error: tls: unknown certificate authority (the client's alert, sent unencrypted)"},
		{"imaps system roots, TLS 1.2", lnIMAPS, e.mf.imaps, imapQuit, []string{"-tls1_2", "-CAfile", systemRoots, "-verify_hostname", "localhost"}, false, "certificate verify failed",
			"remote error: tls: unknown certificate authority"},
		{"pop3 STLS system roots", lnPOP3, e.mf.pop3, pop3Quit, []string{"-starttls", "pop3", "-CAfile", systemRoots}, false, "certificate verify failed",
			"remote error: tls: unknown certificate authority (the client's alert, sent unencrypted)"},
		{"imaps other name", lnIMAPS, e.mf.imaps, imapQuit, []string{"-CAfile", e.mf.caFile, "-verify_hostname", "mail.example.com"}, false, "certificate verify failed",
			"remote error: tls: bad certificate (the client's alert, sent unencrypted)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mark := e.mf.log.size()
			r := sClient(t, tt.quit, tt.addr, append(tt.args, "-verify_return_error")...)
			if (r.code == 0) != tt.ok || !strings.Contains(string(r.stderr), tt.want) {
				t.Fatalf("got %s\nwant success %v and %q", r, tt.ok, tt.want)
			}
			if tt.alert == "" {
				return
			}
			if line := e.mf.sessionEnd(t, mark, tt.listener, "tls-failed"); !strings.Contains(line, tt.alert) {
				t.Errorf("mailfront logged\n%s\nwant the client's alert: %q", line, tt.alert)
			}
		})
	}
}
