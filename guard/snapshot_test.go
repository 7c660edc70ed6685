package guard

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// TestSnapshot: the admin view lists blocked and penalised networks and
// counts delayed users, and never holds a user name or a password; the
// logs do not either.
func TestSnapshot(t *testing.T) {
	e := newEnv(t, Options{BlockFailures: 3, UserFailures: 2, HalfLife: 1000 * time.Hour})
	const secret = "Tr0ub4dor&3"
	for i := range 3 {
		e.fail("203.0.113.9", "Zelda", secret+string(rune('a'+i)))
	}
	e.fail("198.51.100.7", "zelda", secret)
	e.fail("2001:db8:aa:bb::1", "zelda", secret)
	e.try("2001:db8:aa:bb::2", "zelda", secret+"x", proxy.LoginFailed) // not waited out: a next attempt ahead
	e.g.Connect("imap", addr("192.0.2.1"))                             // a connection: state, but not penalised

	snap := e.g.Snapshot()
	out, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot:\n%s", out)
	for _, leak := range []string{"zelda", "Zelda", secret} {
		if strings.Contains(string(out), leak) || strings.Contains(e.logs.String(), leak) {
			t.Errorf("%q in the snapshot or the logs", leak)
		}
	}
	if len(snap.Blocked) != 1 || snap.Blocked[0].Network != "203.0.113.9/32" || snap.Blocked[0].Failures != 3 ||
		!snap.Blocked[0].Until.Equal(snap.Blocked[0].Since.Add(DefaultBlockDuration)) {
		t.Errorf("blocked %+v, want 203.0.113.9/32 after 3 failures for 15m", snap.Blocked)
	}
	var nets []string
	for _, p := range snap.Penalised {
		nets = append(nets, p.Network)
	}
	if got, want := strings.Join(nets, " "), "2001:db8:aa:bb::/64 198.51.100.7/32"; got != want {
		t.Errorf("penalised %q, want %q (highest score first)", got, want)
	}
	p := snap.Penalised[0]
	if !near(time.Duration(p.Delay), 8*time.Second) || p.NextAttempt.IsZero() || !near(time.Duration(p.Score*1e9), 2e9) {
		t.Errorf("penalised %+v, want score 2, delay 8s and a next attempt", p)
	}
	if !snap.Penalised[1].NextAttempt.IsZero() {
		t.Errorf("penalised %+v, want no next attempt (waited out)", snap.Penalised[1])
	}
	st := snap.Stats
	if st.Blocked != 1 || st.Penalised != 2 || st.DelayedUsers != 1 || st.Tables.Networks != 4 || st.Tables.Users != 1 || st.Blocks != 1 {
		t.Errorf("stats %+v, want 1 blocked, 2 penalised, 1 delayed user, 4 networks, 1 user, 1 block", st)
	}
	var back struct {
		Penalised []struct {
			Delay       string `json:"delay"`
			NextAttempt string `json:"next_attempt"`
		} `json:"penalised"`
	}
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if back.Penalised[0].Delay != "8s" || back.Penalised[1].NextAttempt != "" {
		t.Errorf("JSON penalised %+v, want delay \"8s\" and next_attempt left out when past", back.Penalised)
	}
	var d Duration
	if err := d.UnmarshalText([]byte("8s")); err != nil || d != Duration(8*time.Second) {
		t.Errorf("Duration round trip: %v, %v", d, err)
	}
}

// TestSnapshotEmpty: an idle guard's snapshot has empty lists, not nulls.
func TestSnapshotEmpty(t *testing.T) {
	e := newEnv(t, Options{})
	_, p := e.try("192.0.2.1", "alice", "right", proxy.LoginOK)
	if p != 0 {
		t.Fatalf("penalty %v", p)
	}
	out, _ := json.Marshal(e.g.Snapshot())
	if !strings.Contains(string(out), `"blocked":[],"penalised":[]`) {
		t.Errorf("got %s", out)
	}
}
