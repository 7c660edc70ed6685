// Package guard is mailfront's defence against password guessing and its
// per-network admission control; *Guard implements proxy.Gate.
//
// Client addresses are grouped into networks (by default /32 for IPv4 and
// /64 for IPv6; IPv4-mapped IPv6 addresses count as IPv4). For each network
// it enforces the allow and deny lists (global and per listener), caps
// concurrent connections, new TLS handshakes per minute and logins in
// flight, and keeps one failure budget shared by all of the network's
// connections: every failed login pushes the network's next attempt time
// back by a delay that doubles from BaseDelay to MaxDelay and fades with
// HalfLife, so parallel guesses queue behind one another. At most
// ParallelLogins of a network's logins are at the backend at once: the
// others wait for a turn, and then for the penalty the first ones'
// failures set, so parallel connections buy an attacker no more than that
// many unpenalised guesses. Too many failures
// within a window block the network for a while. A mail app retrying the
// same stale password counts once. A user name failing from many networks
// gets a small soft delay, capped and reset by a successful login. Trusted
// networks are exempt from all of it.
//
// Every table is a sharded LRU with lazy expiry, bounded by MaxEntries
// whatever an attacker sprays. Passwords are never stored or logged: a
// failed credential is kept only as a truncated HMAC-SHA256 under a key
// made at random per process, and user names only as keyed hashes.
//
// It does not persist anything: its state lives in this process only, is
// lost on restart and is not shared between instances. It never locks out a
// user name (only networks are blocked). It does not count failures per
// connection or close connections, and it speaks no protocol: what a refusal
// or a delay looks like on the wire (RFC 5530 response codes, RFC 4954 and
// RFC 2449 failure replies) is the protocol handlers' business. It runs no
// goroutine of its own: expiry happens when state is touched, and when
// Stats or Snapshot look at it.
package guard
