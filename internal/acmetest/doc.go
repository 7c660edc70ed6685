// Package acmetest runs a real ACME certificate authority in-process for the
// tests of mailfront's ACME support: Let's Encrypt's Pebble (its ca, va and
// wfe packages, RFC 8555 plus the ARI renewalInfo draft) behind an
// httptest TLS server whose own certificate comes from a CA minted at run
// time.
//
// It is not for production and not a fake: Pebble really validates the
// http-01, tls-alpn-01 and dns-01 challenges by dialling the ports and
// asking the DNS server the test configures, and it issues real chains
// (leaf and intermediate) under a root that lives only in memory. It does
// not stop Pebble's validation goroutines (Pebble has no way to), and it
// sets Pebble's environment variables for the whole test process (see
// Start).
package acmetest
