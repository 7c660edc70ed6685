// Package tlsconf builds mailfront's client-facing *tls.Config: TLS 1.2 or
// newer only, TLS 1.2 limited to ECDHE with AEAD suites, strict ALPN per
// listener protocol, and certificates chosen by SNI from two sources:
// PEM files, watched and reloaded without dropping a session (a broken new
// file keeps the old certificate in service), and ACME through certmagic,
// which obtains certificates before the listeners open, renews them, and
// answers http-01, tls-alpn-01 and dns-01 challenges on listeners of their
// own. It also mints the demo's self-signed certificate.
//
// It does not read configuration files, never orders a certificate for a
// name a client sends (only the configured domains), and never answers a
// challenge on a mail listener.
//
// It follows RFC 8446 (TLS 1.3), RFC 5246 (TLS 1.2), RFC 7525 / RFC 9325
// (secure use of TLS), RFC 7301 (ALPN; "imap" and "pop3" are registered
// by RFC 8314 section 7.1 and IANA), RFC 6066 section 3 (SNI), RFC 8555
// (ACME), RFC 8737 (tls-alpn-01) and RFC 9773 (ACME renewal information,
// through certmagic).
package tlsconf
