package guard

import (
	"testing"
	"time"
)

// TestBucket: a bucket starts full, refills continuously and never holds
// more than its capacity.
func TestBucket(t *testing.T) {
	const capacity = 3
	perTick := capacity / float64(time.Minute)
	sec := int64(time.Second)
	cases := []struct {
		name  string
		takes []int64 // times of attempts
		want  []bool
	}{
		{"a full bucket's worth at once", []int64{0, 0, 0, 0}, []bool{true, true, true, false}},
		{"refills a token in 20s", []int64{0, 0, 0, 19 * sec, 20 * sec, 20 * sec}, []bool{true, true, true, false, true, false}},
		{"never more than capacity", []int64{0, 3600 * sec, 3600 * sec, 3600 * sec, 3600 * sec}, []bool{true, true, true, true, false}},
		{"a steady rate passes", []int64{0, 20 * sec, 40 * sec, 60 * sec, 80 * sec, 100 * sec}, []bool{true, true, true, true, true, true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bucket
			b.fill(capacity, 0)
			for i, at := range c.takes {
				if got := b.take(capacity, perTick, at); got != c.want[i] {
					t.Errorf("take %d at %v: %v, want %v", i, time.Duration(at), got, c.want[i])
				}
			}
		})
	}
}
