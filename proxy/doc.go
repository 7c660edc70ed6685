// Package proxy is mailfront's protocol-neutral engine: listeners and the
// accept loop, connection caps, the client connection type (bounded line
// reads, deadlines from the limits, a TLS upgrade that drops buffered
// plaintext), backend dialing, the transparent relay with half-close, and
// graceful shutdown. A quiet relayed session holds no copy buffer, no
// goroutine (on Linux its sockets wait in one shared epoll set) and no
// empty crypto/tls input buffer.
//
// It knows nothing about IMAP or POP3: the protocol packages implement
// Handler and own the pre-authentication dialogue. It does not build TLS
// configurations (package tlsconf does) or read configuration files
// (package config, used only by the command).
//
// It follows RFC 8446 and RFC 5246 through crypto/tls, and the STARTTLS
// hygiene of RFC 2595 section 3.1 and RFC 3207 section 6 (CVE-2011-0411):
// nothing read before the handshake is used after it.
package proxy
