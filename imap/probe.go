package imap

import (
	"fmt"

	"github.com/mailfront/mailfront/proxy"
)

// ask reads the greeting, asks CAPABILITY when the greeting carries no
// list, and logs out without logging in.
func ask(c *proxy.Conn) ([]string, error) {
	b := &backendConn{c: c}
	caps, err := b.greeting()
	if err == nil && caps == nil {
		caps, err = b.capability()
	}
	if err != nil {
		return nil, err
	}
	// Polite, but not waited for: the answer changes nothing.
	c.WriteString(b.tag() + " LOGOUT\r\n")
	if caps == nil {
		return nil, fmt.Errorf("%w: no capability list", errBackendProtocol)
	}
	return caps, nil
}
