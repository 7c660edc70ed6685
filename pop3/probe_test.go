package pop3

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/pop3mem"
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

// TestCapabilityEdit: a listener's capabilities key edits what a backend
// is taken to support. A backend without CAPA (popa3d) has TOP and UIDL
// offered only when the operator declares them; it is logged once, as a
// warning when nothing is declared. Removing a capability the backend
// lists takes it out of mailfront's CAPA; removing USER makes mailfront
// log in with AUTH PLAIN.
func TestCapabilityEdit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mem       pop3mem.Options
		edit      proxy.CapabilityEdit
		want, not []string // in and not in mailfront's CAPA under TLS
		log       string   // the one line about the backend's capabilities, "" for none
		first     []string // the login's first backend commands (the probe asked CAPA)
	}{
		{"no CAPA, nothing declared", pop3mem.Options{NoCAPA: true}, proxy.CapabilityEdit{},
			[]string{"USER"}, []string{"TOP", "UIDL"},
			`level=WARN msg="backend does not advertise its capabilities"`, []string{"USER alice"}},
		{"no CAPA, TOP and UIDL declared", pop3mem.Options{NoCAPA: true}, proxy.CapabilityEdit{Add: []string{"TOP", "UIDL"}},
			[]string{"USER", "TOP", "UIDL"}, nil,
			`level=INFO msg="backend does not advertise its capabilities"`, []string{"USER alice"}},
		{"UIDL removed", pop3mem.Options{}, proxy.CapabilityEdit{Remove: []string{"UIDL", "PIPELINING"}},
			[]string{"TOP"}, []string{"UIDL", "PIPELINING"}, "", []string{"USER alice"}},
		{"USER removed", pop3mem.Options{}, proxy.CapabilityEdit{Remove: []string{"USER"}},
			[]string{"UIDL"}, nil, "", []string{"AUTH PLAIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startProxy(t, withBackend(tt.mem), withCapabilities(tt.edit))
			if err := f.handler.Probe(context.Background()); err != nil {
				t.Fatalf("probe: %v", err)
			}
			w := f.tlsReady(t, "implicit")
			w.send("CAPA")
			w.expect("+OK Capability list follows")
			got := w.multiline()
			for _, c := range tt.want {
				if !slices.Contains(got, c) {
					t.Errorf("CAPA: got %q, want %s in it", got, c)
				}
			}
			for _, c := range tt.not {
				if slices.Contains(got, c) {
					t.Errorf("CAPA: got %q, want no %s", got, c)
				}
			}
			w.send("USER alice", "PASS "+alicePassword)
			w.expect("+OK send PASS")
			w.expect("+OK Logged in")
			w.send("QUIT")
			w.expect("+OK pop3mem signing off")
			w.closed()
			if tt.log != "" {
				f.logs.WaitFor(t, 1, tt.log)
			}
			if n := f.logs.Count("backend does not advertise"); tt.log == "" && n != 0 || tt.log != "" && n != 1 {
				t.Errorf("%d lines say the backend does not advertise its capabilities, want %d:\n%s", n, min(len(tt.log), 1), f.logs)
			}
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			defer cancel()
			f.mem.Wait(ctx, func(r [][]string) bool { return len(r) == 2 && len(r[1]) >= len(tt.first) })
			if got := f.mem.Received()[1][:len(tt.first)]; !slices.Equal(got, tt.first) {
				t.Errorf("the login's first backend commands: got %q, want %q", got, tt.first)
			}
		})
	}
}
