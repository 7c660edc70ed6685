// Package integration is mailfront's integration suite: it runs the built
// mailfront binary in front of a real Dovecot (plaintext IMAP and POP3 on
// loopback) and drives it with real clients: curl, python's imaplib and
// poplib, openssl s_client, fetchmail, mbsync, and the Go clients the unit
// tests use (go-imap v2's imapclient and internal/pop3client).
//
// It checks, end to end, what ARCHITECTURE.md promises: TLS 1.2 or newer on the
// implicit TLS (RFC 8314) and STARTTLS/STLS (RFC 2595) listeners, no login
// accepted before TLS and none forwarded (Dovecot's own log is the
// witness), canonical logins that a real server accepts (RFC 9051 LOGIN,
// RFC 1939 USER/PASS), failures reported as RFC 5530 and RFC 3206 codes,
// and a byte-exact relay after login, IDLE (RFC 2177) included. For
// certificates it runs Debian's Pebble (an RFC 8555 ACME server) and a real
// BIND that takes RFC 2136 updates signed with TSIG (RFC 8945): mailfront
// obtains certificates through http-01, tls-alpn-01 (RFC 8737) and dns-01
// from its real configuration file, and picks up certificate files
// replaced under it while a session stays open. Behind a real HAProxy it
// takes the client's address from PROXY headers (HAProxy's PROXY
// protocol, v1 and v2) from trusted balancers only, and it hands the
// client's address on to Dovecot (IMAP ID, POP3 XCLIENT, PROXY headers to
// Dovecot's haproxy listeners, or a loopback source per client network).
//
// It does not unit-test packages (go test ./... does that hermetically) and
// it does not run without the build tag: the tests are in files tagged
// "integration" and need Dovecot, Pebble, BIND, HAProxy and the clients
// installed; integration/run and .ci/run install them on Debian. See
// README.md in this directory.
package integration
