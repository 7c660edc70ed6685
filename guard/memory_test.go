package guard

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"runtime"
	"strconv"
	"testing"

	"github.com/mailfront/mailfront/proxy"
)

// sprayAddr is the i-th of a spray of distinct networks, IPv4 and IPv6 in
// turn.
func sprayAddr(i int) netip.Addr {
	if i%2 == 0 {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(i)|1<<31)
		return netip.AddrFrom4(a)
	}
	var a [16]byte
	a[0], a[1] = 0x20, 0x01
	binary.BigEndian.PutUint64(a[:8], 0x2001_0db8_0000_0000|uint64(i))
	a[15] = 1
	return netip.AddrFrom16(a)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryBound: a spray of distinct networks, each connecting and
// failing a login for a user name of its own, never grows either table
// beyond MaxEntries, and the heap stops growing once the tables are full.
func TestMemoryBound(t *testing.T) {
	const bound = 10000
	total := 1_000_000
	if raceEnabled || testing.Short() {
		total = 100_000
	}
	// Not logged: evictions of blocked networks would log, and the lines
	// kept would count in the heap.
	g := newEnv(t, Options{MaxEntries: bound, Log: slog.New(slog.DiscardHandler)}).g
	check := func(i int) {
		if n, u := g.nets.len(), g.users.len(); n > bound || u > bound {
			t.Fatalf("after %d networks: %d networks and %d users kept, want at most %d", i, n, u, bound)
		}
	}
	spray := func(from, to int) {
		for i := from; i < to; i++ {
			a := sprayAddr(i)
			v, reason, release := g.Connect("imaps", a)
			if v != proxy.Admit {
				t.Fatalf("network %d (%s): %v %q", i, a, v, reason)
			}
			done, err := g.Login(context.Background(), a, "user"+strconv.Itoa(i), "guess")
			if err != nil {
				t.Fatalf("network %d: %v", i, err)
			}
			done(proxy.LoginFailed)
			release()
			if i%1000 == 0 {
				check(i)
			}
		}
	}
	before := heapInUse()
	spray(0, total/10)
	full := heapInUse()
	spray(total/10, total)
	after := heapInUse()
	check(total)
	st := g.Stats()
	t.Logf("%d networks: heap %.1f MB before, %.1f MB with full tables, %.1f MB after; tables %+v",
		total, mb(before), mb(full), mb(after), st.Tables)
	if st.Tables.Max > bound || st.Tables.Max < bound*99/100 {
		t.Errorf("table bound %d, want at most %d and close to it", st.Tables.Max, bound)
	}
	if st.Tables.Networks != st.Tables.Max || st.Tables.Users != st.Tables.Max {
		t.Errorf("tables %+v, want both full (the spray is recent)", st.Tables)
	}
	if grown := int64(after) - int64(full); grown > 4<<20 {
		t.Errorf("heap grew %.1f MB after the tables were full, want under 4 MB", float64(grown)/(1<<20))
	}
	if perEntry := (int64(after) - int64(before)) / (2 * bound); perEntry > 1024 {
		t.Errorf("%d bytes per table entry, want under 1 KB", perEntry)
	}
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }
