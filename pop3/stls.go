package pop3

import (
	"fmt"

	"github.com/mailfront/mailfront/proxy"
)

// stls upgrades the connection (RFC 2595 section 4). The engine discards
// whatever the client sent after the command and before the handshake
// (CVE-2011-0411) and rebuilds the reader over TLS. On an implicit TLS
// listener, or a second time, STLS is refused (ARCHITECTURE.md invariant 7).
func (ss *session) stls(request) (*proxy.Handoff, error) {
	if ss.s.Conn.IsTLS() {
		return nil, errTLSActive
	}
	if ss.s.TLSConfig == nil {
		return nil, errNoTLS
	}
	if err := ss.write("+OK Begin TLS negotiation\r\n"); err != nil {
		return nil, err
	}
	if err := ss.s.StartTLS(ss.ctx); err != nil {
		return nil, fmt.Errorf("stls: %w: %w", errTLSFailed, err)
	}
	// RFC 2595 section 4: the server discards what it knew before TLS.
	ss.state, ss.username = stateSecure, ""
	return nil, nil
}
