package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/mailfront/mailfront/config"
	"github.com/mailfront/mailfront/imap"
	"github.com/mailfront/mailfront/pop3"
	"github.com/mailfront/mailfront/proxy"
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

// TestClientAddressNamesAgree: config validates client_address with its
// own list of names (it imports no engine package) and the command
// parses it with proxy's; the two lists must be the same, or a setting
// could pass validate and then be read as auto.
func TestClientAddressNamesAgree(t *testing.T) {
	t.Parallel()
	for _, name := range append(proxy.ClientAddressNames(), "") {
		l := config.Listener{Name: "x", Protocol: "imap", Address: ":993", TLS: "implicit", Backend: "127.0.0.1:143", ClientAddress: name}
		cfg := &config.Config{TLS: config.TLS{ACME: &config.ACME{Domains: []string{"mail.example.com"},
			Challenges: config.Challenges{HTTP: &config.ChallengeListener{Address: ":80"}}}}, Listeners: []config.Listener{l}}
		if err := cfg.Validate(); err != nil {
			t.Errorf("client_address %q, a proxy name: config refuses it: %v", name, err)
		}
		if got, ok := proxy.ParseClientAddress(name); !ok || newBackend(config.Limits{}, l, nil).ClientAddress != got {
			t.Errorf("client_address %q: the command reads %v", name, newBackend(config.Limits{}, l, nil).ClientAddress)
		}
	}
	bad := config.Config{Listeners: []config.Listener{{Name: "x", Protocol: "imap", Address: ":993", TLS: "implicit", Backend: "127.0.0.1:143", ClientAddress: "proxy-v3"}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "client_address") {
		t.Errorf("client_address proxy-v3: config accepts it (%v)", err)
	}
	if _, ok := proxy.ParseClientAddress("proxy-v3"); ok {
		t.Error("proxy accepts client_address proxy-v3")
	}
}

// TestCapabilityNamesAgree: config refuses a capabilities key naming an
// IMAP capability mailfront owns, or a POP3 one it cannot offer, with its
// own lists (it imports no protocol package); they must be the
// protocols' own, or a name could pass validate and then do nothing.
func TestCapabilityNamesAgree(t *testing.T) {
	t.Parallel()
	if got, want := config.IMAPOwnedCapabilities, imap.OwnedCapabilities; !slices.Equal(got, want) {
		t.Errorf("config.IMAPOwnedCapabilities %q, imap.OwnedCapabilities %q", got, want)
	}
	for kw := range config.POP3Capabilities {
		if !pop3.Editable(kw) {
			t.Errorf("config takes POP3 capability %s; pop3 ignores it", kw)
		}
	}
	for _, kw := range []string{"TOP", "UIDL", "PIPELINING", "EXPIRE", "LOGIN-DELAY", "USER", "SASL", "XCLIENT",
		"STLS", "RESP-CODES", "AUTH-RESP-CODE", "IMPLEMENTATION", "UTF8", "LANG"} {
		if _, ok := config.POP3Capabilities[kw]; ok != pop3.Editable(kw) {
			t.Errorf("POP3 capability %s: config takes it: %v; pop3 edits it: %v", kw, ok, pop3.Editable(kw))
		}
	}
}
