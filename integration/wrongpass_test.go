//go:build integration

package integration

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/mailfront/mailfront/internal/pop3client"
)

// wrongPassword is a password Dovecot rejects.
const wrongPassword = "battery staple"

// TestWrongPassword logs in with a wrong password over each protocol:
// mailfront passes the login to Dovecot (which logs the mismatch), answers
// the client with the protocol's code (RFC 5530 AUTHENTICATIONFAILED, RFC
// 3206 [AUTH]) and logs a "login failed" line for fail2ban.
//
// Each failure costs Dovecot's auth_failure_delay and raises its penalty
// for 127.0.0.1, so the table stays short.
func TestWrongPassword(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name, listener string
		login          func(t *testing.T) string // returns the refusal
		want           string
	}{
		{"imap implicit TLS", lnIMAPS, func(t *testing.T) string {
			c := e.dialIMAP(t, false, nil)
			err := c.Login(testUser, wrongPassword).Wait()
			var ie *imap.Error
			if !errors.As(err, &ie) {
				t.Fatalf("login: got %v, want a NO", err)
			}
			return string(ie.Type) + " [" + string(ie.Code) + "] " + ie.Text
		}, "NO [AUTHENTICATIONFAILED]"},
		{"pop3 STLS", lnPOP3, func(t *testing.T) string {
			c := e.pop3Client(t, true)
			line, ok := pop3client.IsERR(c.Login(testUser, wrongPassword))
			if !ok {
				t.Fatalf("USER/PASS: got %q, want -ERR", line)
			}
			return line
		}, "-ERR [AUTH]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dvMark, mfMark := e.dv.log.size(), e.mf.log.size()
			if got := tt.login(t); !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			e.mf.log.wait(t, mfMark, regexp.MustCompile(`msg="login failed" .*listener=`+tt.listener+` .*user=`+testUser+` .*outcome=auth-failed`), e.mf.exited)
			e.dv.log.wait(t, dvMark, regexp.MustCompile(`auth: Info: passwd-file\(`+testUser+`,127\.0\.0\.1.*\): Password mismatch`), e.dv.exited)
		})
	}
}
