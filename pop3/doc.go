// Package pop3 is mailfront's POP3 front: it implements proxy.Handler and
// owns a client's whole pre-authentication dialogue, then hands the logged-in
// backend connection to the engine's relay.
//
// It greets with its own banner (no backend banner, version or APOP
// timestamp), computes CAPA from the TLS state, runs STLS, and accepts USER
// and PASS or AUTH PLAIN and AUTH LOGIN only under TLS. It then logs in to
// the plaintext backend with commands it builds itself (USER and PASS, or
// AUTH PLAIN when the backend offers no USER) and answers the client with
// canonical texts; backend wording never reaches the client. The backend's
// capabilities are learnt by probing it (greeting, CAPA, QUIT) at start and
// whenever they are older than CapabilityTTL, and on a login connection
// when they are stale.
//
// It does not relay anything before login, does not proxy APOP (the
// timestamp would have to come from the backend), does not implement the
// TRANSACTION state (after login the relay is transparent and the backend
// answers), and does not implement UTF8 or LANG, which are issued before
// login. Penalties and per-user limits belong to the guard, not here.
//
// It follows RFC 1939 (POP3), RFC 2449 (CAPA and response codes), RFC 2595
// (STLS, with the buffer discarded at the TLS boundary: CVE-2011-0411),
// RFC 3206 (the AUTH and SYS response codes), RFC 5034 (SASL AUTH, with
// optional initial response) and RFC 4616 (PLAIN).
package pop3
