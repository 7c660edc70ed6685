package proxy

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/logtest"
)

// TestRefresher runs a backend through down, down, up and checks that the
// refresher probes at once when it knows nothing, retries failures, stops
// probing once the knowledge is fresh, and logs each change of state once.
func TestRefresher(t *testing.T) {
	t.Parallel()
	results := []error{errors.New("refused"), errors.New("refused"), nil}
	probes := make(chan int, len(results)+1)
	var mu sync.Mutex
	var learnt bool
	n := 0
	logs := logtest.New(t, slog.LevelInfo)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &refresher{
		Backend: "backend:143",
		TTL:     time.Hour, // never reached in this test: one success ends the probing
		Retry:   time.Millisecond,
		Age: func() time.Duration {
			mu.Lock()
			defer mu.Unlock()
			if learnt {
				return 0
			}
			return 1 << 62
		},
		Probe: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if n >= len(results) {
				t.Errorf("probe %d: the knowledge is fresh, want no probe", n+1)
				return nil
			}
			err := results[n]
			learnt = err == nil
			n++
			probes <- n
			return err
		},
		Log: logs.Logger(),
	}
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	for want := 1; want <= len(results); want++ {
		select {
		case got := <-probes:
			if got != want {
				t.Fatalf("got probe %d, want %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("probe %d never came", want)
		}
	}
	cancel()
	<-done
	out := logs.String()
	if got := strings.Count(out, "backend probe failed"); got != 1 {
		t.Errorf("got %d failure lines, want 1 for two failures in a row:\n%s", got, out)
	}
	if got := strings.Count(out, "backend reachable again"); got != 1 {
		t.Errorf("got %d recovery lines, want 1:\n%s", got, out)
	}
}

// TestRefresherWaitsForTTL checks that fresh knowledge is not probed for,
// and that Run returns when its context ends.
func TestRefresherWaitsForTTL(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	r := &refresher{
		TTL: time.Hour,
		Age: func() time.Duration { return time.Minute },
		Probe: func(context.Context) error {
			t.Error("probed fresh knowledge")
			return nil
		},
	}
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
