// Package acmedns solves ACME DNS-01 challenges (RFC 8555 section 8.4) for
// certmagic and acmez: it publishes the TXT record
// "_acme-challenge.<domain>" with the key authorization digest, and removes
// it afterwards.
//
// RFC2136 sends dynamic updates (RFC 2136) signed with TSIG (RFC 8945) to
// the zone's primary server, as BIND, Knot and PowerDNS accept them, and
// waits until that server answers with the record. Exec runs an operator's
// hook for any other DNS host, with lego's exec-provider arguments.
//
// It does not talk to DNS providers' HTTP APIs (that is what the hook is
// for), and it does not check public propagation beyond the primary server:
// secondaries and resolver caches are the operator's TTL and NOTIFY setup,
// and the CA's own retries.
package acmedns
