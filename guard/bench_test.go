package guard

import (
	"context"
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

func benchGuard(b *testing.B, o Options) *Guard {
	b.Helper()
	g, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	g.SetImplicit("imaps", true)
	return g
}

// BenchmarkConnect: an admitted connection from a known address and its
// release (the real clock).
func BenchmarkConnect(b *testing.B) {
	g := benchGuard(b, Options{HandshakesPerMinute: Unlimited})
	a := addr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		_, _, release := g.Connect("imaps", a)
		release()
	}
}

// BenchmarkConnectRefused: a connection from a denied network.
func BenchmarkConnectDenied(b *testing.B) {
	g := benchGuard(b, Options{Deny: pfx("192.0.2.0/24")})
	a := addr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		g.Connect("imaps", a)
	}
}

// BenchmarkConnectParallel: connections from many networks on all CPUs.
func BenchmarkConnectParallel(b *testing.B) {
	g := benchGuard(b, Options{HandshakesPerMinute: Unlimited})
	var next atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var a4 [4]byte
		binary.BigEndian.PutUint32(a4[:], 0x0a000000+next.Add(1)<<8)
		base := binary.BigEndian.Uint32(a4[:])
		i := uint32(0)
		for pb.Next() {
			binary.BigEndian.PutUint32(a4[:], base+i%256)
			i++
			_, _, release := g.Connect("imaps", netip.AddrFrom4(a4))
			release()
		}
	})
}

// minuteClock moves on a minute each time it is read, so no login waits.
func minuteClock() func() time.Time {
	var n atomic.Int64
	start := time.Now()
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * time.Minute) }
}

// BenchmarkLoginOK: Login and done for a successful login.
func BenchmarkLoginOK(b *testing.B) {
	g := benchGuard(b, Options{})
	a := addr("192.0.2.1")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		done, err := g.Login(ctx, a, "alice@example.org", "correct horse battery staple")
		if err != nil {
			b.Fatal(err)
		}
		done(proxy.LoginOK)
	}
}

// BenchmarkLoginFailed: Login and done for failed logins, each with a new
// password, on a clock that moves on so that none waits.
func BenchmarkLoginFailed(b *testing.B) {
	g := benchGuard(b, Options{Now: minuteClock(), BlockFailures: Unlimited})
	a := addr("192.0.2.1")
	ctx := context.Background()
	pw := []byte("guess-0000")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		binary.BigEndian.PutUint32(pw[6:], uint32(i))
		done, err := g.Login(ctx, a, "alice@example.org", string(pw))
		if err != nil {
			b.Fatal(err)
		}
		done(proxy.LoginFailed)
	}
}
