package proxy

import "bytes"

// tlsHandshakeRecord is the first byte of a TLS ClientHello: the record
// type of a handshake (RFC 8446 section 5.1).
const tlsHandshakeRecord = 0x16

// otherProtocol names the protocol a client's first line belongs to when
// it is not a mail protocol's: an HTTP request line ("GET / HTTP/1.1",
// HTTP/2's "PRI * HTTP/2.0"), an SMTP greeting (EHLO, HELO) or a PROXY
// version 1 header ("PROXY TCP4 ..."); "" when it may be IMAP or POP3.
// Neither mail protocol has a command that looks like these: an IMAP tag
// "EHLO" or "PROXY" would be the one way, and no client uses them.
func otherProtocol(line []byte) string {
	method, rest, ok := bytes.Cut(line, []byte(" "))
	if ok && isHTTPMethod(method) {
		if _, version, ok := bytes.Cut(rest, []byte(" ")); ok && bytes.HasPrefix(version, []byte("HTTP/")) {
			return "http"
		}
	}
	if bytes.EqualFold(method, []byte("EHLO")) || bytes.EqualFold(method, []byte("HELO")) {
		return "smtp"
	}
	if string(method) == "PROXY" && (bytes.HasPrefix(rest, []byte("TCP4 ")) || bytes.HasPrefix(rest, []byte("TCP6 ")) || bytes.Equal(rest, []byte("UNKNOWN")) || bytes.HasPrefix(rest, []byte("UNKNOWN "))) {
		return "proxy" // a PROXY v1 header from a source the listener does not trust
	}
	return ""
}

// isHTTPMethod reports whether b is a token of upper-case letters as long
// as HTTP's methods are (GET to OPTIONS, PROPFIND and the like).
func isHTTPMethod(b []byte) bool {
	if len(b) < 3 || len(b) > 10 {
		return false
	}
	for _, c := range b {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
