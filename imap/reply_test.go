package imap

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mailfront/mailfront/proxy"
)

var errNetwork = errors.New("connection reset by peer")

func errWrap(err error) error { return fmt.Errorf("read: %w", err) }

func TestGoodbye(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		err         error
		wantLine    string
		wantOutcome proxy.Outcome
	}{
		{"line", &proxy.LimitError{Kind: proxy.LimitLine, Max: 8192}, "* BYE [LIMIT] Line too long (max 8192 bytes)\r\n", proxy.OutcomeLimit},
		{"literal", &proxy.LimitError{Kind: proxy.LimitLiteral, Max: 4096}, "* BYE [TOOBIG] Literal too large (max 4096 bytes)\r\n", proxy.OutcomeLimit},
		{"commands", &proxy.LimitError{Kind: proxy.LimitCommands, Max: 50}, "* BYE [LIMIT] Too many commands before login (max 50)\r\n", proxy.OutcomeLimit},
		{"invalid", &proxy.LimitError{Kind: proxy.LimitInvalidCommands, Max: 5}, "* BYE [LIMIT] Too many invalid commands (max 5)\r\n", proxy.OutcomeProtocolError},
		{"idle", proxy.ErrIdle, "* BYE Autologout; idle for too long\r\n", proxy.OutcomeTimeout},
		{"total", proxy.ErrTotalTime, "* BYE Autologout; session time limit exceeded\r\n", proxy.OutcomeTimeout},
		{"shutdown wrapped", errWrap(proxy.ErrShutdown), "* BYE [UNAVAILABLE] Server shutting down\r\n", proxy.OutcomeShutdown},
		{"bye value", bye("", "Too many authentication failures", proxy.OutcomeAuthFailed), "* BYE Too many authentication failures\r\n", proxy.OutcomeAuthFailed},
		{"logout", proxy.ErrLogout, "", proxy.OutcomeLogout},
		{"network", errWrap(errNetwork), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, o := goodbye(tt.err)
			if line != tt.wantLine || o != tt.wantOutcome {
				t.Errorf("got %q, %q; want %q, %q", line, o, tt.wantLine, tt.wantOutcome)
			}
		})
	}
}

// TestGoodbyesNameEveryLimit: every limit the engine can report has its
// own BYE line, which names the limit's value.
func TestGoodbyesNameEveryLimit(t *testing.T) {
	t.Parallel()
	for k := proxy.LimitLine; k <= proxy.LimitInvalidCommands; k++ {
		line, _ := goodbye(&proxy.LimitError{Kind: k, Max: 12345})
		if !strings.HasPrefix(line, "* BYE [") || !strings.Contains(line, "12345") || !strings.HasSuffix(line, "\r\n") {
			t.Errorf("%s: got %q, want a BYE naming the limit", k, line)
		}
	}
}
