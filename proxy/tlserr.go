package proxy

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// HandshakeFailureReason sorts a failed TLS handshake into a small fixed
// set of reasons, for metrics: "timeout", "client-closed", "not-tls",
// "protocol-version", "no-shared-cipher", "alpn", "client-alert" (the
// client refused, e.g. our certificate), "shutdown" or "other".
// crypto/tls has no typed errors for these, so the text decides.
func HandshakeFailureReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, ErrShutdown):
		return "shutdown"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return "client-closed"
	}
	msg := err.Error()
	for _, r := range handshakeReasons {
		if strings.Contains(msg, r.text) {
			return r.reason
		}
	}
	return "other"
}

var handshakeReasons = []struct{ text, reason string }{
	{"does not look like a TLS handshake", "not-tls"},
	{"unsupported versions", "protocol-version"},
	{"protocol version not supported", "protocol-version"},
	{"no cipher suite supported", "no-shared-cipher"},
	{"unsupported application protocols", "alpn"},
	{"no application protocol", "alpn"},
	{"remote error", "client-alert"},
}
