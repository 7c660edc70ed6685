package tlsconf

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// defaultWatchInterval is how often the certificate files are looked at.
const defaultWatchInterval = 2 * time.Second

// watcher reloads the certificate files when they change: certbot's
// renewal, cert-manager's secret update (a symlink swap), a control panel
// rewriting them in place. It polls the files' size, modification time and
// inode, which sees all three without a platform notification API, and
// waits until a change has held still for one interval so a certificate is
// never paired with a key that is still being written.
type watcher struct {
	mu       sync.Mutex // serialises reloads (watcher and SIGHUP)
	interval time.Duration
	loaded   string // stamp of the files in service
	failed   string // stamp of files that failed to load; not retried until they change
	stop     chan struct{}
	done     chan struct{}
	// step, when set before Start (tests), replaces the ticker: the loop
	// polls once per channel it receives and closes that channel when the
	// poll, and any reload it made, is done.
	step chan chan struct{}
}

// stat stamps every certificate file, following symlinks; a file that
// cannot be read stamps as its error.
func (s *Store) stat() string {
	var b strings.Builder
	for _, f := range s.files {
		for _, path := range []string{f.CertFile, f.KeyFile} {
			fi, err := os.Stat(path)
			if err != nil {
				fmt.Fprintf(&b, "%s:%v;", path, err)
				continue
			}
			var ino uint64
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				ino = uint64(st.Ino)
			}
			fmt.Fprintf(&b, "%s:%d:%d:%d;", path, fi.Size(), fi.ModTime().UnixNano(), ino)
		}
	}
	return b.String()
}

func (s *Store) startWatch() {
	w := &s.watch
	if len(s.files) == 0 || w.interval < 0 || w.stop != nil {
		return
	}
	if w.interval == 0 {
		w.interval = defaultWatchInterval
	}
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go s.watchLoop()
}

func (s *Store) stopWatch() {
	w := &s.watch
	if w.stop == nil {
		return
	}
	close(w.stop)
	<-w.done
	w.stop = nil
}

func (s *Store) watchLoop() {
	w := &s.watch
	defer close(w.done)
	var tick <-chan time.Time
	if w.step == nil {
		t := time.NewTicker(w.interval)
		defer t.Stop()
		tick = t.C
	}
	pending := ""
	for {
		var stepped chan struct{}
		select {
		case <-w.stop:
			return
		case <-tick:
		case stepped = <-w.step:
		}
		pending = s.poll(pending)
		if stepped != nil {
			close(stepped)
		}
	}
}

// poll looks at the files once. pending is the stamp of a change the
// previous poll saw; a change is reloaded when it is seen a second time,
// having held still for an interval. It returns the new pending stamp.
func (s *Store) poll(pending string) string {
	w := &s.watch
	stamp := s.stat()
	w.mu.Lock()
	unchanged := stamp == w.loaded || stamp == w.failed
	w.mu.Unlock()
	if unchanged {
		return ""
	}
	if stamp != pending {
		return stamp // first sight of a change: wait one interval
	}
	if err := s.Reload(); err != nil {
		s.log.Error("certificate reload failed; keeping the certificates in service", "error", err)
	}
	return ""
}
