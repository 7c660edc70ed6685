// Package imap is mailfront's IMAP pre-authentication dialogue: it
// implements proxy.Handler for IMAP listeners.
//
// It greets the client with mailfront's own greeting, parses the client's
// commands with a small bounded parser (tags, atoms, quoted strings,
// synchronizing and non-synchronizing literals), answers CAPABILITY, NOOP,
// ID and LOGOUT itself, upgrades with STARTTLS, and takes LOGIN and
// AUTHENTICATE PLAIN or LOGIN only under TLS. It then dials the plaintext
// backend, logs in with a command it builds itself (LOGIN, or AUTHENTICATE
// PLAIN when the backend disables LOGIN), replays the client's ID, and
// hands both connections to the engine's relay. Capabilities follow the
// TLS state; what the backend supports is learnt by probing it (greeting,
// CAPABILITY, LOGOUT) at start and whenever the knowledge is older than a
// TTL, and from every connection mailfront logs in with.
//
// It does not relay or parse anything after login, proxy mechanisms that
// hide the password from it (SCRAM, GSSAPI, OAUTHBEARER), or support
// authorization identities other than the user. Listening, TLS, limits'
// enforcement on reads and the relay belong to package proxy.
//
// It follows RFC 9051 and RFC 3501 (IMAP4rev2 and IMAP4rev1), RFC 2595
// (STARTTLS), RFC 4959 (SASL-IR), RFC 4616 (PLAIN), RFC 5530 (response
// codes), RFC 7888 (LITERAL-) and RFC 2971 (ID).
package imap
