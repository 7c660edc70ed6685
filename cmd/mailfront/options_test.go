package main

import (
	"testing"

	"github.com/mailfront/mailfront/config"
)

// TestPlaintextRefusalNamesThePort: the refusal of a login before TLS
// names the port mailfront serves implicit TLS on for that protocol, the
// same backend's first, and no port when there is none.
func TestPlaintextRefusalNamesThePort(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Listeners: []config.Listener{
		{Protocol: "imap", Address: ":10993", TLS: "implicit", Backend: "10.0.0.9:143"},
		{Protocol: "imap", Address: ":20993", TLS: "implicit", Backend: "127.0.0.1:1143"},
		{Protocol: "imap", Address: ":10143", TLS: "starttls", Backend: "127.0.0.1:1143"},
		{Protocol: "pop3", Address: ":10110", TLS: "starttls", Backend: "127.0.0.1:1110"},
		{Protocol: "pop3", Address: ":10995", TLS: "implicit", Backend: "127.0.0.1:1110"},
		{Protocol: "imap", Address: ":143", TLS: "starttls", Backend: "127.0.0.1:1143", PlaintextRefusal: "see https://example.com/tls"},
	}}
	for i, want := range map[int]string{
		2: "TLS is required to log in: use STARTTLS, or SSL/TLS on port 20993",
		3: "TLS required: use STLS, or implicit TLS on port 10995",
		5: "see https://example.com/tls",
	} {
		if got := newListener(cfg, cfg.Listeners[i], proxyLimits(cfg)).PlaintextRefusal; got != want {
			t.Errorf("listeners[%d]: got %q, want %q", i, got, want)
		}
	}
	alone := &config.Config{Listeners: []config.Listener{{Protocol: "pop3", Address: ":110", TLS: "starttls", Backend: "127.0.0.1:1110"}}}
	if got, want := newListener(alone, alone.Listeners[0], proxyLimits(alone)).PlaintextRefusal, "TLS required: use STLS"; got != want {
		t.Errorf("without an implicit TLS listener: got %q, want %q", got, want)
	}
}
