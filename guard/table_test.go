package guard

import (
	"fmt"
	"slices"
	"testing"
)

// testTable is a one-shard table of ints whose values say whether they
// are idle (v < 0) or kept (v > 0).
func testTable(bound int) (*table[int, int], *[]string) {
	var dropped []string
	t := newTable[int, int](bound, func(k int) uint64 { return uint64(k) })
	t.idle = func(v *int, now int64) bool { return *v < 0 }
	t.keep = func(v *int, now int64) bool { return *v > 0 }
	t.dropped = func(k int, v *int, now int64, evicted bool) {
		dropped = append(dropped, fmt.Sprintf("%d evicted=%v", k, evicted))
	}
	return t, &dropped
}

func (t *table[K, V]) keys() []K {
	var out []K
	for i := range t.shards {
		for e := t.shards[i].head; e != nil; e = e.next {
			out = append(out, e.key)
		}
	}
	return out
}

// TestTable: least recently used first out; idle entries at the cold end
// go first; kept entries are passed over when a few others can go.
func TestTable(t *testing.T) {
	cases := []struct {
		name    string
		max     int
		values  []int // keys 0, 1, 2... with these values, added in order
		touch   []int // then looked up
		add     int   // then this key is added
		keys    []int // most recent first
		dropped []string
	}{
		{"under the bound", 3, []int{0, 0}, nil, 9, []int{9, 1, 0}, nil},
		{"least recently used goes", 3, []int{0, 0, 0}, nil, 9, []int{9, 2, 1}, []string{"0 evicted=true"}},
		{"a lookup refreshes", 3, []int{0, 0, 0}, []int{0}, 9, []int{9, 0, 2}, []string{"1 evicted=true"}},
		{"idle at the cold end expires", 5, []int{-1, 0}, nil, 9, []int{9, 1}, []string{"0 evicted=false"}},
		{"kept entries are passed over", 3, []int{1, 1, 0}, nil, 9, []int{9, 1, 0}, []string{"2 evicted=true"}},
		{"all kept: the coldest goes", 3, []int{1, 1, 1}, nil, 9, []int{9, 2, 1}, []string{"0 evicted=true"}},
		{"only the coldest few are scanned", 10, []int{0, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []int{0}, 10, []int{10, 0, 9, 8, 7, 6, 5, 4, 3, 2}, []string{"1 evicted=true"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb, dropped := testTable(c.max)
			s := tb.shardOf(0)
			for k := range c.values {
				if _, created := tb.getOrAdd(s, k, 0); !created {
					t.Fatalf("key %d not created", k)
				}
			}
			for k, v := range c.values {
				s.m[k].val = v
			}
			*dropped = nil
			for _, k := range c.touch {
				if tb.get(s, k) == nil {
					t.Fatalf("key %d missing", k)
				}
			}
			tb.getOrAdd(s, c.add, 0)
			if got := tb.keys(); !slices.Equal(got, c.keys) {
				t.Errorf("keys %v, want %v", got, c.keys)
			}
			if !slices.Equal(*dropped, c.dropped) {
				t.Errorf("dropped %q, want %q", *dropped, c.dropped)
			}
			if n := tb.len(); n > c.max {
				t.Errorf("%d entries, over the bound %d", n, c.max)
			}
		})
	}
}

// TestTableSweep: a sweep drops the idle entries and visits the others.
func TestTableSweep(t *testing.T) {
	tb, dropped := testTable(100)
	s := tb.shardOf(0)
	values := []int{-1, 0, -1, 1}
	for k := range values {
		tb.getOrAdd(s, k, 0)
	}
	for k, v := range values {
		s.m[k].val = v
	}
	var visited []int
	tb.sweep(0, func(k int, _ *int) { visited = append(visited, k) })
	if want := []int{3, 1}; !slices.Equal(visited, want) {
		t.Errorf("visited %v, want %v", visited, want)
	}
	if want := []string{"2 evicted=false", "0 evicted=false"}; !slices.Equal(*dropped, want) {
		t.Errorf("dropped %q, want %q", *dropped, want)
	}
	if tb.len() != 2 {
		t.Errorf("%d entries left, want 2", tb.len())
	}
}

// TestTableShards: the shards together never hold more than the bound.
func TestTableShards(t *testing.T) {
	for _, bound := range []int{1, 255, 512, 1000, 10000, 100000, 1 << 20} {
		tb := newTable[int, int](bound, func(k int) uint64 { return uint64(k) })
		if c := tb.capacity(); c > bound || c < bound*97/100 {
			t.Errorf("bound %d: capacity %d in %d shards", bound, c, len(tb.shards))
		}
	}
}
