package proxy

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/logtest"
)

// plaintextAlert stands in for OpenSSL's client (curl, fetchmail, python,
// mbsync): after its ClientHello, the next record it writes (crypto/tls's
// encrypted alert refusing the certificate) goes out as OpenSSL sends it
// under TLS 1.3, unencrypted.
type plaintextAlert struct {
	net.Conn
	writes int
	alert  byte
}

func (c *plaintextAlert) Write(p []byte) (int, error) {
	c.writes++
	if c.writes == 2 {
		if _, err := c.Conn.Write([]byte{recordTypeAlert, 3, 3, 0, 2, 2, c.alert}); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// TestClientAlertNamed: a client that refuses the certificate is logged
// with the alert it sent (tls-failed, "unknown certificate authority"),
// whether crypto/tls could read it (encrypted) or not (OpenSSL's
// unencrypted alert, which crypto/tls reports as "bad record MAC"); the
// handshake metric counts it as client-alert.
func TestClientAlertNamed(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		version   uint16
		plaintext bool
		want      string
	}{
		{"TLS 1.3, unencrypted alert", tls.VersionTLS13, true, `reason="tls handshake: remote error: tls: unknown certificate authority (the client's alert, sent unencrypted)"`},
		// crypto/tls's own client says bad_certificate, encrypted.
		{"TLS 1.3, encrypted alert", tls.VersionTLS13, false, `reason="tls handshake: remote error: tls: bad certificate"`},
		{"TLS 1.2", tls.VersionTLS12, false, `reason="tls handshake: remote error: tls: bad certificate"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srvCfg, _ := serverTLS(t)
			logs := logtest.New(t, slog.LevelDebug)
			obs := newRecorder()
			l := &Listener{Name: "alert", Protocol: "toy", Address: "127.0.0.1:0", Mode: Implicit, TLS: srvCfg,
				Handler: lineHandler{&Backend{Address: echoBackend(t)}}}
			s := &Server{Listeners: []*Listener{l}, Log: logs.Logger(), Drain: time.Second, Observer: obs}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Shutdown(context.Background()) })

			raw, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var conn net.Conn = raw
			if tt.plaintext {
				conn = &plaintextAlert{Conn: raw, alert: 48} // unknown_ca
			}
			// No roots: the client refuses the certificate with unknown_ca.
			c := tls.Client(conn, &tls.Config{ServerName: "localhost", MinVersion: tt.version, MaxVersion: tt.version})
			if err := c.Handshake(); err == nil {
				t.Fatal("the client accepted a certificate from an unknown CA")
			}
			line := logs.WaitFor(t, 1, `msg="session end"`)
			if !strings.Contains(line, "outcome=tls-failed") || !strings.Contains(line, tt.want) {
				t.Errorf("session end:\n%s\nwant outcome=tls-failed and %s", line, tt.want)
			}
			obs.waitEnded(t)
			if !obs.has("handshake-failed alert client-alert") {
				t.Errorf("the failed handshake was not counted as client-alert: %q", obs.events)
			}
		})
	}
}

// TestSilentAfterHandshakeHinted: a client that completes the handshake
// and leaves without a byte (mbsync refusing the certificate, which it
// checks afterwards, sends no alert) is client-closed with a hint saying
// so; one that said something first gets no hint.
func TestSilentAfterHandshakeHinted(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, send string
		hint       bool
	}{
		{"silent", "", true},
		{"spoke first", "hello\r\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srvCfg, cliCfg := serverTLS(t)
			logs := logtest.New(t, slog.LevelDebug)
			l := &Listener{Name: "silent", Protocol: "toy", Address: "127.0.0.1:0", Mode: Implicit, TLS: srvCfg,
				Handler: lineHandler{&Backend{Address: echoBackend(t)}}}
			s := &Server{Listeners: []*Listener{l}, Log: logs.Logger(), Drain: time.Second}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Shutdown(context.Background()) })
			c, err := tls.Dial("tcp", l.Addr().String(), cliCfg)
			if err != nil {
				t.Fatal(err)
			}
			if tt.send != "" {
				c.Write([]byte(tt.send))
			}
			c.Close()
			line := logs.WaitFor(t, 1, `msg="session end"`)
			if !strings.Contains(line, "outcome=client-closed") || strings.Contains(line, "hint=") != tt.hint {
				t.Errorf("session end:\n%s\nwant outcome=client-closed, a hint: %v", line, tt.hint)
			}
		})
	}
}
