package acmetest

import (
	"bytes"
	"log"
	"sync"
)

// logSink forwards log lines to a test's log until the test cleans up;
// Pebble's goroutines can outlive the test, and logging after it has
// completed panics.
type logSink struct {
	mu      sync.Mutex
	logf    func(format string, args ...any)
	stopped bool
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.logf("%s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

func (s *logSink) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
}

func (s *logSink) logger(prefix string) *log.Logger { return log.New(s, prefix, 0) }
