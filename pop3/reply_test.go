package pop3

import (
	"strings"
	"testing"

	"github.com/mailfront/mailfront/proxy"
)

// TestGoodbyesNameEveryLimit: every limit the engine can report has its
// own -ERR line, which names the limit's value.
func TestGoodbyesNameEveryLimit(t *testing.T) {
	t.Parallel()
	for k := proxy.LimitLine; k <= proxy.LimitInvalidCommands; k++ {
		line, _ := goodbye(&proxy.LimitError{Kind: k, Max: 12345})
		if !strings.HasPrefix(line, "-ERR ") || !strings.Contains(line, "12345") || !strings.HasSuffix(line, "\r\n") {
			t.Errorf("%s: got %q, want an -ERR naming the limit", k, line)
		}
	}
}
