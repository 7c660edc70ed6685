package metrics_test

import (
	"crypto/tls"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailfront/mailfront/metrics"
	"github.com/mailfront/mailfront/proxy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

type labels = map[string]string

// drive calls every method of m once or more, with known amounts.
func drive(m *metrics.Metrics, notAfter time.Time) {
	m.AddListener("imaps", "imap")
	m.AddListener("pop3", "pop3")
	m.Build("v1.2.3", "0123abc", "go1.26.8")
	m.Build("v1.2.4", "4567def", "go1.26.8") // replaces the first
	m.CertExpiry(func() map[string]time.Time {
		return map[string]time.Time{"mail.example.org": notAfter, "pending.example.org": {}}
	})
	m.GuardStats(func() (int, int) { return 3, 7 })
	m.CertReload(true)
	m.CertReload(false)
	m.CertReload(false)

	for range 3 {
		m.SessionStarted("imaps")
	}
	m.SessionRelayed("imaps")
	m.SessionEnded("imaps", proxy.OutcomeOK, true, 120, 4096)
	m.SessionEnded("imaps", proxy.OutcomeAuthFailed, false, 0, 0)
	m.SessionStarted("pop3")
	m.SessionRelayed("pop3")
	m.ConnectionRefused("pop3", "handshake rate")
	m.Handshake("imaps", tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256)
	m.Handshake("imaps", tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256)
	m.Handshake("imaps", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
	m.HandshakeFailed("imaps", "not-tls")
	m.Login("imap", proxy.LoginOK, 20*time.Millisecond)
	m.Login("imap", proxy.LoginFailed, 3*time.Second)
	m.Login("pop3", proxy.LoginBackendError, 15*time.Second)
	m.Login("pop3-busy", proxy.LoginBusy, 10*time.Millisecond)
	m.SelfTestFailed(proxy.ShortcutTLSBufferRelease)
	m.LoginRefused("imap")
	m.PlaintextRefused("pop3")
	m.GuardDelay(2 * time.Second)
	m.GuardDelay(45 * time.Second)
	m.BackendDialFailed("pop3")
	m.AddProxyProtocol("imaps")
	m.ProxyHeader("imaps", proxy.HeaderOK)
	m.ProxyHeader("imaps", proxy.HeaderOK)
	m.ProxyHeader("imaps", proxy.HeaderUntrusted)
}

func TestObserverCountsInScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	notAfter := time.Date(2031, 5, 17, 12, 0, 0, 0, time.UTC)
	drive(metrics.New(reg), notAfter)
	fams := scrape(t, reg)
	checkFamilies(t, fams)

	tests := []struct {
		name   string
		labels labels
		want   float64
	}{
		{"mailfront_sessions_total", labels{"listener": "imaps", "outcome": "ok"}, 1},
		{"mailfront_sessions_total", labels{"listener": "imaps", "outcome": "auth-failed"}, 1},
		{"mailfront_sessions_total", labels{"listener": "imaps", "outcome": "logout"}, 0},
		{"mailfront_sessions_total", labels{"listener": "pop3", "outcome": "ok"}, 0},
		{"mailfront_sessions_open", labels{"listener": "imaps", "phase": "pre_login"}, 1},
		{"mailfront_sessions_open", labels{"listener": "imaps", "phase": "relayed"}, 0},
		{"mailfront_sessions_open", labels{"listener": "pop3", "phase": "pre_login"}, 0},
		{"mailfront_sessions_open", labels{"listener": "pop3", "phase": "relayed"}, 1},
		{"mailfront_relayed_bytes_total", labels{"listener": "imaps", "direction": "client_to_backend"}, 120},
		{"mailfront_relayed_bytes_total", labels{"listener": "imaps", "direction": "backend_to_client"}, 4096},
		{"mailfront_relayed_bytes_total", labels{"listener": "pop3", "direction": "client_to_backend"}, 0},
		{"mailfront_connections_refused_total", labels{"listener": "pop3", "reason": "handshake rate"}, 1},
		{"mailfront_tls_handshakes_total", labels{"listener": "imaps", "version": "TLS 1.3", "cipher_suite": "TLS_AES_128_GCM_SHA256"}, 2},
		{"mailfront_tls_handshakes_total", labels{"listener": "imaps", "version": "TLS 1.2", "cipher_suite": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}, 1},
		{"mailfront_tls_handshake_failures_total", labels{"listener": "imaps", "reason": "not-tls"}, 1},
		{"mailfront_logins_total", labels{"protocol": "imap", "result": "ok"}, 1},
		{"mailfront_logins_total", labels{"protocol": "imap", "result": "failed"}, 1},
		{"mailfront_logins_total", labels{"protocol": "imap", "result": "backend_error"}, 0},
		{"mailfront_logins_total", labels{"protocol": "imap", "result": "refused"}, 1},
		{"mailfront_logins_total", labels{"protocol": "pop3", "result": "backend_error"}, 1},
		{"mailfront_logins_total", labels{"protocol": "pop3-busy", "result": "mailbox_busy"}, 1},
		{"mailfront_logins_total", labels{"protocol": "pop3", "result": "mailbox_busy"}, 0},
		{"mailfront_relay_selftest_failures_total", labels{"shortcut": "tls-buffer-release"}, 1},
		{"mailfront_logins_total", labels{"protocol": "pop3", "result": "ok"}, 0},
		{"mailfront_plaintext_logins_refused_total", labels{"protocol": "pop3"}, 1},
		{"mailfront_plaintext_logins_refused_total", labels{"protocol": "imap"}, 0},
		{"mailfront_backend_dial_failures_total", labels{"protocol": "pop3"}, 1},
		{"mailfront_backend_dial_failures_total", labels{"protocol": "imap"}, 0},
		{"mailfront_certificate_reloads_total", labels{"result": "ok"}, 1},
		{"mailfront_certificate_reloads_total", labels{"result": "error"}, 2},
		{"mailfront_certificate_expiry_timestamp_seconds", labels{"name": "mail.example.org"}, float64(notAfter.Unix())},
		{"mailfront_guard_blocked_networks", labels{}, 3},
		{"mailfront_guard_penalised_networks", labels{}, 7},
		{"mailfront_build_info", labels{"version": "v1.2.4", "commit": "4567def", "go": "go1.26.8"}, 1},
		{"mailfront_proxy_headers_total", labels{"listener": "imaps", "result": "ok"}, 2},
		{"mailfront_proxy_headers_total", labels{"listener": "imaps", "result": "untrusted"}, 1},
		{"mailfront_proxy_headers_total", labels{"listener": "imaps", "result": "missing"}, 0},
	}
	for _, tt := range tests {
		if got := value(t, fams, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s: got %v, want %v", series(tt.name, tt.labels), got, tt.want)
		}
	}

	absent := []struct {
		name   string
		labels labels
	}{
		{"mailfront_build_info", labels{"version": "v1.2.3", "commit": "0123abc", "go": "go1.26.8"}},
		{"mailfront_certificate_expiry_timestamp_seconds", labels{"name": "pending.example.org"}},
	}
	for _, tt := range absent {
		if m := sample(fams, tt.name, tt.labels); m != nil {
			t.Errorf("%s: got %v, want no such sample", series(tt.name, tt.labels), m)
		}
	}
}

func TestHistogramsInScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	drive(metrics.New(reg), time.Now())
	fams := scrape(t, reg)

	tests := []struct {
		name    string
		labels  labels
		count   uint64
		sum     float64
		le      float64 // a bucket's upper bound
		inLe    uint64  // and its cumulative count
		buckets int     // number of finite buckets
	}{
		{"mailfront_backend_login_duration_seconds", labels{"protocol": "imap"}, 2, 3.02, 0.025, 1, 12},
		{"mailfront_backend_login_duration_seconds", labels{"protocol": "pop3"}, 1, 15, 15, 1, 12},
		{"mailfront_guard_delay_seconds", labels{}, 2, 47, 30, 1, 7},
	}
	for _, tt := range tests {
		m := sample(fams, tt.name, tt.labels)
		if m == nil || m.Histogram == nil {
			t.Errorf("%s: got %v, want a histogram", series(tt.name, tt.labels), m)
			continue
		}
		h := m.Histogram
		if h.GetSampleCount() != tt.count || math.Abs(h.GetSampleSum()-tt.sum) > 1e-9 {
			t.Errorf("%s: got count %d sum %v, want %d and %v", series(tt.name, tt.labels), h.GetSampleCount(), h.GetSampleSum(), tt.count, tt.sum)
		}
		if got := finiteBuckets(h); got != tt.buckets {
			t.Errorf("%s: got %d buckets, want %d", series(tt.name, tt.labels), got, tt.buckets)
		}
		if got, ok := bucket(h, tt.le); !ok || got != tt.inLe {
			t.Errorf("%s: bucket le=%v: got %d (found %v), want %d", series(tt.name, tt.labels), tt.le, got, ok, tt.inLe)
		}
	}
}

func finiteBuckets(h *dto.Histogram) int {
	n := 0
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() < 1e300 {
			n++
		}
	}
	return n
}

func bucket(h *dto.Histogram, le float64) (uint64, bool) {
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount(), true
		}
	}
	return 0, false
}

// TestAddListenerShowsZeros checks that a listener added before any
// traffic has its series, at 0, so that rates and alerts work from the
// first scrape.
func TestAddListenerShowsZeros(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg).AddListener("pop3s", "pop3")
	fams := scrape(t, reg)
	want := []struct {
		name   string
		labels labels
	}{
		{"mailfront_sessions_total", labels{"listener": "pop3s", "outcome": "ok"}},
		{"mailfront_sessions_total", labels{"listener": "pop3s", "outcome": "refused"}},
		{"mailfront_sessions_total", labels{"listener": "pop3s", "outcome": "tls-failed"}},
		{"mailfront_sessions_open", labels{"listener": "pop3s", "phase": "pre_login"}},
		{"mailfront_sessions_open", labels{"listener": "pop3s", "phase": "relayed"}},
		{"mailfront_relayed_bytes_total", labels{"listener": "pop3s", "direction": "client_to_backend"}},
		{"mailfront_relayed_bytes_total", labels{"listener": "pop3s", "direction": "backend_to_client"}},
		{"mailfront_logins_total", labels{"protocol": "pop3", "result": "ok"}},
		{"mailfront_logins_total", labels{"protocol": "pop3", "result": "failed"}},
		{"mailfront_logins_total", labels{"protocol": "pop3", "result": "backend_error"}},
		{"mailfront_logins_total", labels{"protocol": "pop3", "result": "refused"}},
		{"mailfront_logins_total", labels{"protocol": "pop3", "result": "mailbox_busy"}},
		{"mailfront_relay_selftest_failures_total", labels{"shortcut": "tls-buffer-release"}},
		{"mailfront_plaintext_logins_refused_total", labels{"protocol": "pop3"}},
		{"mailfront_backend_dial_failures_total", labels{"protocol": "pop3"}},
		{"mailfront_certificate_reloads_total", labels{"result": "ok"}},
		{"mailfront_certificate_reloads_total", labels{"result": "error"}},
	}
	for _, tt := range want {
		if got := value(t, fams, tt.name, tt.labels); got != 0 {
			t.Errorf("%s: got %v, want 0", series(tt.name, tt.labels), got)
		}
	}
	if n := len(fams["mailfront_sessions_total"].GetMetric()); n != len(proxy.Outcomes) {
		t.Errorf("mailfront_sessions_total: got %d series for one listener, want one per outcome (%d)", n, len(proxy.Outcomes))
	}
	if h := sample(fams, "mailfront_backend_login_duration_seconds", labels{"protocol": "pop3"}); h == nil || h.GetHistogram().GetSampleCount() != 0 {
		t.Errorf("mailfront_backend_login_duration_seconds{protocol=\"pop3\"}: got %v, want an empty histogram", h)
	}
	// Nothing is reported for what has not been set up.
	for _, name := range []string{"mailfront_build_info", "mailfront_guard_blocked_networks", "mailfront_certificate_expiry_timestamp_seconds"} {
		if fams[name] != nil {
			t.Errorf("%s: got %v before it was set, want nothing", name, fams[name])
		}
	}
}

// TestFamilyNames checks that every family is mailfront's own or one of
// the standard go_ and process_ collectors', and that all of mailfront's
// are there once every method has been driven.
func TestFamilyNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	drive(metrics.New(reg), time.Now())
	fams := scrape(t, reg)
	for name := range fams {
		if !strings.HasPrefix(name, "mailfront_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("family %s: want the prefix mailfront_ (or go_, process_)", name)
		}
	}
	for name := range wantFamilies {
		if fams[name] == nil {
			t.Errorf("family %s: missing from the scrape", name)
		}
	}
	if fams["go_goroutines"] == nil {
		t.Error("go_goroutines missing: the Go collector is not registered")
	}
}

// TestNewRegisters covers the registries New is given.
func TestNewRegisters(t *testing.T) {
	t.Run("go and process collectors already there", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		m := metrics.New(reg)
		m.SessionStarted("imaps")
		if n, err := testutil.GatherAndCount(reg, "mailfront_sessions_open"); err != nil || n != 2 {
			t.Errorf("mailfront_sessions_open: got %d series, %v; want 2", n, err)
		}
	})
	t.Run("nil registers nothing", func(t *testing.T) {
		m := metrics.New(nil)
		drive(m, time.Now()) // must not panic
	})
	t.Run("twice on one registry panics", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		metrics.New(reg)
		defer func() {
			if recover() == nil {
				t.Error("second New on one registry: got no panic, want one")
			}
		}()
		metrics.New(reg)
	})
}

// TestConcurrentObservers drives listeners and protocols never added from
// many goroutines at once (run with -race): every count must arrive.
func TestConcurrentObservers(t *testing.T) {
	const workers, rounds = 8, 500
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				m.SessionStarted("late")
				m.Handshake("late", tls.VersionTLS13, tls.TLS_CHACHA20_POLY1305_SHA256)
				m.SessionRelayed("late")
				m.Login("lateproto", proxy.LoginOK, time.Millisecond)
				m.SessionEnded("late", proxy.OutcomeOK, true, 1, 2)
			}
		})
	}
	wg.Wait()
	fams := scrape(t, reg)
	const n = workers * rounds
	tests := []struct {
		name   string
		labels labels
		want   float64
	}{
		{"mailfront_sessions_total", labels{"listener": "late", "outcome": "ok"}, n},
		{"mailfront_sessions_open", labels{"listener": "late", "phase": "pre_login"}, 0},
		{"mailfront_sessions_open", labels{"listener": "late", "phase": "relayed"}, 0},
		{"mailfront_relayed_bytes_total", labels{"listener": "late", "direction": "backend_to_client"}, 2 * n},
		{"mailfront_tls_handshakes_total", labels{"listener": "late", "version": "TLS 1.3", "cipher_suite": "TLS_CHACHA20_POLY1305_SHA256"}, n},
		{"mailfront_logins_total", labels{"protocol": "lateproto", "result": "ok"}, n},
	}
	for _, tt := range tests {
		if got := value(t, fams, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s: got %v, want %v", series(tt.name, tt.labels), got, tt.want)
		}
	}
}

// BenchmarkSession is the observer's cost for one relayed session.
func BenchmarkSession(b *testing.B) {
	m := metrics.New(prometheus.NewRegistry())
	m.AddListener("imaps", "imap")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.SessionStarted("imaps")
			m.Handshake("imaps", tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256)
			m.Login("imap", proxy.LoginOK, 10*time.Millisecond)
			m.SessionRelayed("imaps")
			m.SessionEnded("imaps", proxy.OutcomeOK, true, 100, 1000)
		}
	})
}
