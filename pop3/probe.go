package pop3

import (
	"fmt"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// ask reads the greeting, asks CAPA and quits without logging in; the
// handler's learnt applies the listener's edit.
func ask(c *proxy.Conn) (backendCaps, error) {
	line, err := c.ReadLine()
	if err != nil {
		return backendCaps{}, backendErr("read backend greeting", err)
	}
	if !strings.HasPrefix(string(line), "+OK") {
		return backendCaps{}, fmt.Errorf("greeting not +OK: %w", errUnavailable)
	}
	caps, err := fetchCaps(c)
	if err != nil {
		return backendCaps{}, err
	}
	// Polite, but not waited for: the answer changes nothing.
	c.WriteString("QUIT\r\n")
	return caps, nil
}
