package guard

import "sync"

// evictScan is how many entries from the cold end eviction looks at for
// one it can drop without losing a block, a connection count or a login in
// flight, before it gives up and drops the coldest anyway.
const evictScan = 8

// table is a sharded LRU map with lazy expiry, bounded by a total number
// of entries: no shard holds more than its share. Callers hold a shard's
// mutex while they use its entries (and the values inside them).
type table[K comparable, V any] struct {
	shards []shard[K, V]
	mask   uint64
	per    int // entries per shard
	hash   func(K) uint64
	// idle reports that an entry holds nothing worth keeping: it is
	// dropped when seen at the cold end or by a sweep.
	idle func(v *V, now int64) bool
	// keep reports that an entry is expensive to lose (eviction skips it
	// if it can); nil keeps nothing.
	keep func(v *V, now int64) bool
	// dropped, if set, is called with the shard locked when an entry
	// leaves the table (evicted: it was not idle).
	dropped func(k K, v *V, now int64, evicted bool)
}

type shard[K comparable, V any] struct {
	mu         sync.Mutex
	m          map[K]*entry[K, V]
	head, tail *entry[K, V] // most and least recently used
	_          [64]byte     // keeps neighbouring shards' mutexes off one cache line
}

type entry[K comparable, V any] struct {
	key        K
	val        V
	prev, next *entry[K, V]
	shard      *shard[K, V]
	live       bool // in the table; false once dropped
}

// newTable makes a table of at most size entries, in a power of two of
// shards that each hold at least 256 (or a single shard).
func newTable[K comparable, V any](size int, hash func(K) uint64) *table[K, V] {
	n := 1
	for n < 32 && size/(n*2) >= 256 {
		n *= 2
	}
	t := &table[K, V]{shards: make([]shard[K, V], n), mask: uint64(n - 1), per: size / n, hash: hash}
	for i := range t.shards {
		t.shards[i].m = make(map[K]*entry[K, V])
	}
	return t
}

// shardOf returns the shard that holds k (locked by the caller).
func (t *table[K, V]) shardOf(k K) *shard[K, V] {
	return &t.shards[t.hash(k)&t.mask]
}

// get returns k's entry, now the most recently used, or nil.
func (t *table[K, V]) get(s *shard[K, V], k K) *entry[K, V] {
	e := s.m[k]
	if e != nil {
		s.touch(e)
	}
	return e
}

// getOrAdd returns k's entry, making a zero one if there is none (created
// is then true). Making one in a shard at least half full first drops the
// coldest entry if it is idle (below that, idle entries stay, so that a
// client coming back costs no allocation), then evicts if the shard is
// full.
func (t *table[K, V]) getOrAdd(s *shard[K, V], k K, now int64) (e *entry[K, V], created bool) {
	if e = t.get(s, k); e != nil {
		return e, false
	}
	if len(s.m) >= t.per/2 && s.tail != nil && t.idle(&s.tail.val, now) {
		t.remove(s, s.tail, now, false)
	}
	if len(s.m) >= t.per {
		t.evict(s, now)
	}
	e = &entry[K, V]{key: k, shard: s, live: true}
	s.m[k] = e
	s.pushFront(e)
	return e, true
}

// evict drops the coldest entry that is idle or not worth keeping among
// the evictScan coldest, or else the coldest.
func (t *table[K, V]) evict(s *shard[K, V], now int64) {
	victim := s.tail
	for e, i := s.tail, 0; e != nil && i < evictScan; e, i = e.prev, i+1 {
		if t.idle(&e.val, now) || t.keep == nil || !t.keep(&e.val, now) {
			victim = e
			break
		}
	}
	if victim != nil {
		t.remove(s, victim, now, !t.idle(&victim.val, now))
	}
}

// remove drops e from its shard.
func (t *table[K, V]) remove(s *shard[K, V], e *entry[K, V], now int64, evicted bool) {
	if !e.live {
		return
	}
	e.live = false
	delete(s.m, e.key)
	s.unlink(e)
	if t.dropped != nil {
		t.dropped(e.key, &e.val, now, evicted)
	}
}

// sweep visits every entry, dropping the idle ones; each shard is locked
// only while its own entries are visited. fn may be nil.
func (t *table[K, V]) sweep(now int64, fn func(k K, v *V)) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for e := s.head; e != nil; {
			next := e.next
			if t.idle(&e.val, now) {
				t.remove(s, e, now, false)
			} else if fn != nil {
				fn(e.key, &e.val)
			}
			e = next
		}
		s.mu.Unlock()
	}
}

// len counts the entries, locking each shard in turn.
func (t *table[K, V]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// capacity is the most entries the table ever holds.
func (t *table[K, V]) capacity() int { return t.per * len(t.shards) }

func (s *shard[K, V]) touch(e *entry[K, V]) {
	if s.head == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

func (s *shard[K, V]) pushFront(e *entry[K, V]) {
	e.prev, e.next = nil, s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
}

func (s *shard[K, V]) unlink(e *entry[K, V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}
