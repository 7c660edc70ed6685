package metrics

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mailfront/mailfront/proxy"
)

const namespace = "mailfront"

// Label values that are not from the configuration or package proxy.
const (
	phasePreLogin = "pre_login"
	phaseRelayed  = "relayed"

	fromClient = "client_to_backend"
	toClient   = "backend_to_client"

	resultOK           = "ok"
	resultFailed       = "failed"
	resultBackendError = "backend_error"
	resultBusy         = "mailbox_busy"
	resultRefused      = "refused"
	resultError        = "error"
)

// Histogram buckets, in seconds.
var (
	// loginBuckets spans a backend answering from memory (5 ms) to one
	// stalling until the login timeout (15 s).
	loginBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15}
	// delayBuckets spans the guard's failure penalties, from the first
	// (half a second) to the longest (30 s).
	delayBuckets = []float64{0.5, 1, 2, 4, 8, 15, 30}
)

// Metrics is mailfront's instrumentation. It implements proxy.Observer; its
// methods are safe for concurrent use. Create it with New.
type Metrics struct {
	sessions      *prometheus.CounterVec   // listener, outcome
	open          *prometheus.GaugeVec     // listener, phase
	bytes         *prometheus.CounterVec   // listener, direction
	refused       *prometheus.CounterVec   // listener, reason
	handshakes    *prometheus.CounterVec   // listener, version, cipher_suite
	handshakeFail *prometheus.CounterVec   // listener, reason
	logins        *prometheus.CounterVec   // protocol, result
	plaintext     *prometheus.CounterVec   // protocol
	dialFailures  *prometheus.CounterVec   // protocol
	loginLatency  *prometheus.HistogramVec // protocol
	guardDelay    prometheus.Histogram
	certReloads   *prometheus.CounterVec // result
	selfTests     *prometheus.CounterVec // shortcut
	proxyHeaders  *prometheus.CounterVec // listener, result
	build         *prometheus.GaugeVec   // version
	scrape        *scrapeCollector

	mu        sync.Mutex // serialises additions to listeners and protocols
	listeners atomic.Pointer[map[string]*listenerSet]
	protocols atomic.Pointer[map[string]*protocolSet]
}

// New creates the metrics and registers them with reg, together with the
// standard Go runtime and process collectors unless reg already has them.
// A nil reg registers nothing. Like prometheus.MustRegister, it panics if a
// mailfront metric is registered already: that is a wiring bug.
func New(reg prometheus.Registerer) *Metrics {
	m := newMetrics()
	if reg == nil {
		return m
	}
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			if are := (prometheus.AlreadyRegisteredError{}); !errors.As(err, &are) {
				panic(err)
			}
		}
	}
	reg.MustRegister(m.collectors()...)
	return m
}

func newMetrics() *Metrics {
	m := &Metrics{
		sessions: counterVec("sessions_total",
			"Client sessions ended, by listener and outcome (how the session ended).", "listener", "outcome"),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "sessions_open",
			Help: "Client sessions open now, by listener and phase (pre_login: before the backend accepted a login; relayed: logged in)."},
			[]string{"listener", "phase"}),
		bytes: counterVec("relayed_bytes_total",
			"Bytes relayed after login, by listener and direction; added when the session ends.", "listener", "direction"),
		refused: counterVec("connections_refused_total",
			"Connections and STARTTLS handshakes turned away by the guard or the access lists, by listener and reason.", "listener", "reason"),
		handshakes: counterVec("tls_handshakes_total",
			"Completed TLS handshakes with clients, by listener, TLS version and cipher suite.", "listener", "version", "cipher_suite"),
		handshakeFail: counterVec("tls_handshake_failures_total",
			"Failed TLS handshakes with clients, by listener and reason.", "listener", "reason"),
		logins: counterVec("logins_total",
			"Login attempts, by protocol and result (ok, failed: wrong credentials, mailbox_busy: right credentials but the mailbox is locked or polled too soon (POP3 IN-USE, LOGIN-DELAY), backend_error: the backend could not be asked, refused: the guard refused before the backend).", "protocol", "result"),
		plaintext: counterVec("plaintext_logins_refused_total",
			"Logins attempted before TLS and refused, by protocol.", "protocol"),
		dialFailures: counterVec("backend_dial_failures_total",
			"Backend connections that could not be established, by protocol.", "protocol"),
		loginLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "backend_login_duration_seconds",
			Help: "Time the backend took to answer a login (including dialling it), by protocol.", Buckets: loginBuckets},
			[]string{"protocol"}),
		guardDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "guard_delay_seconds",
			Help: "Failure penalties clients waited before their failed login was answered.", Buckets: delayBuckets}),
		certReloads: counterVec("certificate_reloads_total",
			"Certificate reloads from files, by result (ok or error).", "result"),
		selfTests: counterVec("relay_selftest_failures_total",
			"Relay shortcuts past the standard library that failed their self-test at start and are off, by shortcut.", "shortcut"),
		proxyHeaders: counterVec("proxy_headers_total",
			"PROXY headers from trusted load balancers, by listener and result (ok: a client's address; local: the balancer's own connection, a health check; "+
				"refused: empty, missing, malformed, oversized, timeout, and untrusted: a header from a source not in proxy_protocol.trusted).", "listener", "result"),
		build: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
			Help: "Always 1; the labels are mailfront's version, the commit it was built from and the Go version."}, []string{"version", "commit", "go"}),
		scrape: &scrapeCollector{},
	}
	m.listeners.Store(&map[string]*listenerSet{})
	m.protocols.Store(&map[string]*protocolSet{})
	for _, r := range []string{resultOK, resultError} {
		m.certReloads.WithLabelValues(r)
	}
	m.selfTests.WithLabelValues(proxy.ShortcutTLSBufferRelease)
	return m
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.sessions, m.open, m.bytes, m.refused, m.handshakes, m.handshakeFail,
		m.logins, m.plaintext, m.dialFailures, m.loginLatency, m.guardDelay,
		m.certReloads, m.selfTests, m.proxyHeaders, m.build, m.scrape,
	}
}
