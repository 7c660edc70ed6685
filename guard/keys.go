package guard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"hash/maphash"
	"net/netip"
	"strings"
	"sync"
)

// keyedHash is HMAC-SHA256 under a key made at random for this process,
// truncated to 64 bits. Nothing it hashes is kept, so neither a user name
// nor a password is ever in the guard's memory after the call that hashes
// it, and the hashes mean nothing to another process or after a restart.
type keyedHash struct{ pool sync.Pool }

// hasher is a pooled HMAC with a scratch buffer for its input and output.
type hasher struct {
	mac hash.Hash
	buf []byte
}

// maxScratch bounds the scratch buffer a pooled hasher keeps.
const maxScratch = 1024

func newKeyedHash() *keyedHash {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand since Go 1.24)
	k := &keyedHash{}
	k.pool.New = func() any { return &hasher{mac: hmac.New(sha256.New, key), buf: make([]byte, 0, 256)} }
	return k
}

// sum hashes the parts, each followed by a NUL byte (no user name or
// password contains one: both come from one protocol line or SASL field,
// where NUL separates or is refused). The scratch copy is wiped.
func (k *keyedHash) sum(parts ...string) uint64 {
	h := k.pool.Get().(*hasher)
	b := h.buf[:0]
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	h.mac.Reset()
	h.mac.Write(b)
	clear(b)
	b = h.mac.Sum(b[:0])
	v := binary.BigEndian.Uint64(b)
	if cap(b) <= maxScratch {
		h.buf = b[:0]
		k.pool.Put(h)
	}
	return v
}

// secrets are the guard's per-process keys.
type secrets struct {
	creds *keyedHash   // user name and password, as given: stale repeats
	users *keyedHash   // user names, case-folded: the per-user table
	nets  maphash.Seed // network keys: shard choice, distinct networks per user
}

func newSecrets() secrets {
	return secrets{creds: newKeyedHash(), users: newKeyedHash(), nets: maphash.MakeSeed()}
}

// credential fingerprints a user name and password together.
func (s secrets) credential(user, password string) uint64 { return s.creds.sum(user, password) }

// user keys a user name, ignoring case.
func (s secrets) user(name string) uint64 { return s.users.sum(strings.ToLower(name)) }

// network hashes a network prefix.
func (s secrets) network(p netip.Prefix) uint64 {
	a := p.Addr().As16()
	return maphash.Bytes(s.nets, a[:]) ^ uint64(p.Bits())
}

// userShard picks a user's shard: the key is already a keyed hash.
func userShard(k uint64) uint64 { return k }
