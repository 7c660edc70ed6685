package metrics

import (
	"time"

	"github.com/mailfront/mailfront/proxy"
)

var _ proxy.Observer = (*Metrics)(nil)

// ConnectionRefused counts a connection or STARTTLS handshake turned away.
func (m *Metrics) ConnectionRefused(listener, reason string) {
	m.refused.WithLabelValues(listener, reason).Inc()
}

// SessionStarted counts a session into the pre-login phase.
func (m *Metrics) SessionStarted(listener string) {
	m.listener(listener).preLogin.Inc()
}

// SessionRelayed moves a session from pre-login to relayed.
func (m *Metrics) SessionRelayed(listener string) {
	ls := m.listener(listener)
	ls.preLogin.Dec()
	ls.relayed.Inc()
}

// SessionEnded counts a session's end by outcome (an empty outcome counts
// as internal-error), takes it out of its phase and adds the bytes it
// relayed.
func (m *Metrics) SessionEnded(listener string, outcome proxy.Outcome, relayed bool, in, out int64) {
	ls := m.listener(listener)
	if relayed {
		ls.relayed.Dec()
	} else {
		ls.preLogin.Dec()
	}
	m.outcome(ls, outcome).Inc()
	if in > 0 {
		ls.in.Add(float64(in))
	}
	if out > 0 {
		ls.out.Add(float64(out))
	}
}

// Handshake counts a completed TLS handshake.
func (m *Metrics) Handshake(listener string, version, cipher uint16) {
	m.handshake(m.listener(listener), version, cipher).Inc()
}

// HandshakeFailed counts a failed TLS handshake.
func (m *Metrics) HandshakeFailed(listener, reason string) {
	m.handshakeFail.WithLabelValues(listener, reason).Inc()
}

// Login counts a login the backend answered, or failed to, and observes
// how long it took.
func (m *Metrics) Login(protocol string, result proxy.LoginResult, latency time.Duration) {
	ps := m.protocol(protocol)
	switch result {
	case proxy.LoginOK:
		ps.ok.Inc()
	case proxy.LoginFailed:
		ps.failed.Inc()
	case proxy.LoginBusy:
		ps.busy.Inc()
	default:
		ps.backendError.Inc()
	}
	ps.latency.Observe(latency.Seconds())
}

// LoginRefused counts a login the guard refused before the backend.
func (m *Metrics) LoginRefused(protocol string) {
	m.protocol(protocol).refused.Inc()
}

// PlaintextRefused counts a login attempted before TLS.
func (m *Metrics) PlaintextRefused(protocol string) {
	m.protocol(protocol).plaintext.Inc()
}

// GuardDelay observes a failure penalty a client waited.
func (m *Metrics) GuardDelay(d time.Duration) {
	m.guardDelay.Observe(d.Seconds())
}

// SelfTestFailed counts a relay shortcut that failed its self-test.
func (m *Metrics) SelfTestFailed(shortcut string) {
	m.selfTests.WithLabelValues(shortcut).Inc()
}

// BackendDialFailed counts a backend that could not be reached.
func (m *Metrics) BackendDialFailed(protocol string) {
	m.protocol(protocol).dialFailed.Inc()
}

// ProxyHeader counts a PROXY header read, or refused, on a listener.
func (m *Metrics) ProxyHeader(listener, result string) {
	m.proxyHeaders.WithLabelValues(listener, result).Inc()
}

// AddProxyProtocol makes a listener's PROXY header series exist, at 0,
// before its first connection: call it for each listener with trusted
// balancers.
func (m *Metrics) AddProxyProtocol(listener string) {
	for _, r := range proxy.HeaderResults {
		m.proxyHeaders.WithLabelValues(listener, r)
	}
}
