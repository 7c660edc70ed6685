package imap

import (
	"fmt"

	"github.com/mailfront/mailfront/proxy"
)

// ask reads the greeting, asks CAPABILITY and logs out without logging
// in. It asks even when the greeting carries a list: a greeting's list may
// be short (Cyrus's names only what logging in needs; its CAPABILITY about
// 60 more), and only a backend that answers CAPABILITY without one is
// taken at its greeting's word.
func ask(c *proxy.Conn) ([]string, error) {
	b := &backendConn{c: c}
	greeting, err := b.greeting()
	if err != nil {
		return nil, err
	}
	caps, err := b.capability()
	if err != nil {
		return nil, err
	}
	if caps == nil {
		caps = greeting
	}
	// Polite, but not waited for: the answer changes nothing.
	c.WriteString(b.tag() + " LOGOUT\r\n")
	if caps == nil {
		return nil, fmt.Errorf("%w: no capability list", errBackendProtocol)
	}
	return caps, nil
}
