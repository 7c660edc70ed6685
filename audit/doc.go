// Package audit is what `mailfront check` runs: it connects to a mail
// server's IMAP, POP3 (and, when asked, SMTP) ports as a client would, and
// reports what a passive eavesdropper or an active attacker on the path
// could get from it: ports open without STARTTLS (RFC 2595, RFC 3207),
// logins offered and checked before TLS (RFC 9051 section 6.2.3 and
// LOGINDISABLED, RFC 1939 USER/PASS, RFC 2449 CAPA, RFC 5530 and RFC 3206
// response codes), PREAUTH, STARTTLS command injection (CVE-2011-0411,
// the EAST paper's test), implicit TLS (RFC 8314), the TLS versions and
// TLS 1.2 cipher suites offered (RFC 8996, RFC 9325), the certificate
// (chain, name with and without SNI, expiry, key, signature, OCSP
// must-staple per RFC 7633) and ALPN (RFC 7301; the ALPACA cross-protocol
// attack).
//
// Each check gives a Finding with a stable id and a severity in the words
// testssl.sh uses; a Report holds them per port, renders them as a table
// or JSON, and maps them to an exit code in the monitoring convention.
//
// It does not use real credentials, ever: the login probes send a random
// throwaway user and password. It does not fix anything, does not try
// passwords, does not speak SSLv2 or SSLv3 (Go has neither), and does not
// scan: it checks the ports it is given on one address. It knows nothing
// of mailfront's configuration; it judges mailfront's front like any
// other server.
package audit
