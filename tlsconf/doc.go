// Package tlsconf builds mailfront's client-facing *tls.Config: TLS 1.2 or
// newer only, TLS 1.2 limited to ECDHE with AEAD suites, strict ALPN per
// listener protocol, and certificates chosen by SNI from PEM files that can
// be reloaded without dropping a session (a broken new file keeps the old
// certificate in service). It also mints the demo's self-signed certificate.
//
// It does not obtain certificates over ACME (a later addition through
// certmagic) and does not read configuration files.
//
// It follows RFC 8446 (TLS 1.3), RFC 5246 (TLS 1.2), RFC 7525 / RFC 9325
// (secure use of TLS), RFC 7301 (ALPN; "imap" and "pop3" are registered
// by RFC 8314 section 7.1 and IANA) and RFC 6066 section 3 (SNI).
package tlsconf
