package pop3

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// TestProbe checks that a probe teaches the backend's capabilities before
// any client has logged in, sending the backend nothing but CAPA and QUIT
// (the scripted backend fails the test on anything else), and that CAPA
// then offers them without another backend connection.
func TestProbe(t *testing.T) {
	t.Parallel()
	backend := scriptedBackend(t, "S: +OK hi", "C: CAPA", "S: +OK list follows",
		"S: TOP", "S: UIDL", "S: PIPELINING", "S: USER", "S: .", "C: QUIT")
	f := startProxy(t, withBackendAddress(backend), withLoginTimeout(5*time.Second))
	capa := func() []string {
		t.Helper()
		w := f.tlsReady(t, "implicit")
		w.send("CAPA")
		w.expect("+OK Capability list follows")
		return w.multiline()
	}
	if got := capa(); slices.Contains(got, "TOP") {
		t.Fatalf("CAPA before the probe: got %q, want no backend capability", got)
	}
	if err := f.handler.Probe(context.Background()); err != nil {
		t.Fatalf("probe: %v", err)
	}
	got := capa()
	for _, want := range []string{"TOP", "UIDL", "PIPELINING", "USER"} {
		if !slices.Contains(got, want) {
			t.Errorf("CAPA after the probe: got %q, want %s in it", got, want)
		}
	}
	if n := f.dials.Load(); n != 1 {
		t.Errorf("backend dialled %d times, want once (the probe)", n)
	}
}

func TestProbeBackendDown(t *testing.T) {
	t.Parallel()
	f := startProxy(t)
	f.down.Store(true)
	err := f.handler.Probe(context.Background())
	if err == nil || !strings.Contains(err.Error(), "probe backend") {
		t.Fatalf("got %v, want a probe error", err)
	}
	if _, fresh := f.handler.Caps.Fresh(); fresh {
		t.Error("a failed probe left the capabilities fresh")
	}
	if err := New(Options{}).Probe(context.Background()); err != proxy.ErrNoBackend {
		t.Errorf("no backend: got %v, want %v", err, proxy.ErrNoBackend)
	}
}
