// Package proxy is mailfront's protocol-neutral engine: listeners and the
// accept loop, connection caps, the client connection type (bounded line
// reads, deadlines from the limits, a TLS upgrade that drops buffered
// plaintext, the refusal of a first line in another protocol), backend
// dialing, the transparent relay with half-close on two paths (optimized
// and standard), and graceful shutdown. A quiet relayed session on the
// optimized path holds no copy buffer, no goroutine (on Linux its sockets
// wait in one shared epoll set) and no empty crypto/tls input buffer.
//
// It also holds what both protocol handlers need, once: the dialogue loop
// (Converse) and the mapping of the engine's errors to goodbyes, the login
// around a handler's backend attempt (the guard, the observer and the log
// lines fail2ban reads), per-connection counts against the limits, and the
// backend capability cache with its probes.
//
// It knows nothing about IMAP or POP3: the protocol packages implement
// Handler and Dialogue and own their wire strings. It does not build TLS
// configurations (package tlsconf does) or read configuration files
// (package config, used only by the command).
//
// It follows RFC 8446 and RFC 5246 through crypto/tls, and the STARTTLS
// hygiene of RFC 2595 section 3.1 and RFC 3207 section 6 (CVE-2011-0411):
// nothing read before the handshake is used after it.
package proxy
