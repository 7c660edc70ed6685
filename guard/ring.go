package guard

// times is a ring of the most recent event times (ticks), holding at most
// the limit passed to add. It grows only as events happen, so a network or
// user that failed once costs one slot.
type times struct {
	t    []int64
	next int // where the next event goes once the ring is full
}

// add records an event at now, forgetting the oldest beyond limit.
func (r *times) add(now int64, limit int) {
	if len(r.t) < limit {
		r.t = append(r.t, now)
		return
	}
	r.t[r.next] = now
	r.next = (r.next + 1) % len(r.t)
}

// since counts the events at or after from.
func (r *times) since(from int64) int {
	n := 0
	for _, t := range r.t {
		if t >= from {
			n++
		}
	}
	return n
}

// reset forgets every event and frees the ring.
func (r *times) reset() { r.t, r.next = nil, 0 }
