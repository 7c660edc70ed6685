package imap

import "fmt"

// cmdStartTLS upgrades the connection (RFC 9051 section 6.2.1). The engine
// drops every byte the client sent before the handshake and rebuilds the
// reader over TLS, so nothing pipelined after STARTTLS is ever read as a
// command (CVE-2011-0411). The client must ask for CAPABILITY again: no
// greeting follows the handshake.
func cmdStartTLS(s *session, cmd *command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	if err := s.ok(cmd.tag, "Begin TLS negotiation now"); err != nil {
		return err
	}
	if err := s.ps.StartTLS(s.ctx); err != nil {
		return fmt.Errorf("starttls: %w", err)
	}
	// RFC 9051 section 6.2.1: what the client said before TLS cannot be
	// trusted; an ID sent in cleartext (an attacker on the path may have
	// written it) is forgotten with the bytes the engine dropped.
	s.state, s.clientID = stateTLS, nil
	return nil
}

// refuseStartTLS answers STARTTLS on a connection already under TLS: on an
// implicit TLS listener, or a second time (ARCHITECTURE.md invariant 7).
func refuseStartTLS(s *session, cmd *command) error {
	return bad("TLS is already active")
}
