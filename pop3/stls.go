package pop3

import "fmt"

// cmdSTLS upgrades the connection (RFC 2595 section 4). The engine discards
// whatever the client sent after the command and before the handshake
// (CVE-2011-0411) and rebuilds the reader over TLS. On an implicit TLS
// listener, or a second time, STLS is refused (ARCHITECTURE.md invariant 7).
func cmdSTLS(s *session, _ *command) error {
	if s.conn.IsTLS() {
		return errTLSActive
	}
	if s.ps.TLSConfig == nil {
		return errNoTLS
	}
	if err := s.ok("Begin TLS negotiation"); err != nil {
		return err
	}
	if err := s.ps.StartTLS(s.ctx); err != nil {
		return fmt.Errorf("stls: %w", err)
	}
	// RFC 2595 section 4: the server discards what it knew before TLS.
	s.state, s.user = stateTLS, ""
	return nil
}
