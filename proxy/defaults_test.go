package proxy

import (
	"math"
	"net"
	"testing"
	"time"
)

// TestLimitsWithDefaults: a zero (or negative) limit is its default, a set
// one is kept, and NewConn puts the same limits in force.
func TestLimitsWithDefaults(t *testing.T) {
	t.Parallel()
	want := Limits{Line: DefaultLine, Literal: DefaultLiteral, Commands: DefaultCommands,
		InvalidCommands: DefaultInvalidCommands, Idle: DefaultIdle, Total: DefaultTotal,
		Handshake: DefaultHandshake, Write: DefaultWrite, AuthFailures: DefaultAuthFailures}
	if got := (Limits{}).WithDefaults(); got != want {
		t.Errorf("zero limits: got %+v, want %+v", got, want)
	}
	if got := (Limits{Line: -1, Idle: -time.Second}).WithDefaults(); got != want {
		t.Errorf("negative limits: got %+v, want %+v", got, want)
	}
	set := Limits{Line: 1000, Literal: 2000, Commands: 3, InvalidCommands: 4, Idle: time.Second,
		Total: 2 * time.Second, Handshake: 3 * time.Second, Write: 4 * time.Second, AuthFailures: 5}
	if got := set.WithDefaults(); got != set {
		t.Errorf("set limits: got %+v, want them kept: %+v", got, set)
	}
	client, server := net.Pipe()
	defer client.Close()
	c := NewConn(server, Limits{Commands: 7})
	defer c.Close()
	if got, want := c.Limits(), (Limits{Commands: 7}).WithDefaults(); got != want {
		t.Errorf("NewConn: got %+v, want %+v", got, want)
	}
}

// TestEffective: zero is the default, negative is off, set is kept.
func TestEffective(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		got, want any
	}{
		{"max conns zero", EffectiveMaxConns(0), DefaultMaxConns},
		{"max conns negative", EffectiveMaxConns(-1), math.MaxInt},
		{"max conns set", EffectiveMaxConns(5), 5},
		{"drain zero", EffectiveDrain(0), DefaultDrain},
		{"drain negative", EffectiveDrain(-time.Second), time.Duration(0)},
		{"drain set", EffectiveDrain(time.Second), time.Second},
		{"keepalive zero", EffectiveKeepalive(0), DefaultKeepalive},
		{"keepalive negative", EffectiveKeepalive(-1), time.Duration(0)},
		{"keepalive set", EffectiveKeepalive(time.Minute), time.Minute},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	connect, login := (&Backend{}).EffectiveTimeouts()
	if connect != DefaultBackendConnect || login != DefaultBackendLogin {
		t.Errorf("backend zero timeouts: got %v and %v, want %v and %v", connect, login, DefaultBackendConnect, DefaultBackendLogin)
	}
	connect, login = (&Backend{Connect: time.Second, Login: 2 * time.Second}).EffectiveTimeouts()
	if connect != time.Second || login != 2*time.Second {
		t.Errorf("backend set timeouts: got %v and %v, want 1s and 2s", connect, login)
	}
}
