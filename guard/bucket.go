package guard

// bucket is a token bucket refilled continuously on the guard's clock
// (times in ticks, nanoseconds since the guard's epoch).
type bucket struct {
	tokens float64
	at     int64 // when tokens was last brought up to date
}

// fill makes a bucket full at now.
func (b *bucket) fill(capacity float64, now int64) { b.tokens, b.at = capacity, now }

// refill adds what accrued since the last update, up to capacity.
func (b *bucket) refill(capacity, perTick float64, now int64) {
	if now > b.at {
		b.tokens = min(capacity, b.tokens+float64(now-b.at)*perTick)
		b.at = now
	}
}

// take spends a token if there is one.
func (b *bucket) take(capacity, perTick float64, now int64) bool {
	b.refill(capacity, perTick, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports that the bucket would be full at now.
func (b *bucket) full(capacity, perTick float64, now int64) bool {
	return b.tokens+float64(max(0, now-b.at))*perTick >= capacity
}
