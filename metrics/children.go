package metrics

import (
	"crypto/tls"
	"maps"
	"sync"

	"github.com/mailfront/mailfront/proxy"
	"github.com/prometheus/client_golang/prometheus"
)

// listenerSet holds one listener's resolved label children, so that the
// observer's hot paths do no label hashing.
type listenerSet struct {
	name              string
	preLogin, relayed prometheus.Gauge
	in, out           prometheus.Counter
	outcomes          map[proxy.Outcome]prometheus.Counter

	mu         sync.RWMutex
	handshakes map[uint32]prometheus.Counter // version<<16 | cipher suite
}

// protocolSet holds one protocol's resolved label children.
type protocolSet struct {
	ok, failed, busy, backendError, refused prometheus.Counter
	plaintext, dialFailed                   prometheus.Counter
	latency                                 prometheus.Observer
}

// AddListener registers a configured listener and its protocol, so that
// their series exist, at 0, before the first connection. Call it once per
// listener at start; the observer methods also accept listeners and
// protocols never added (their series then appear on first use).
func (m *Metrics) AddListener(name, protocol string) {
	m.listener(name)
	m.protocol(protocol)
}

// listener returns name's children, resolving them on first use.
func (m *Metrics) listener(name string) *listenerSet {
	if ls, ok := (*m.listeners.Load())[name]; ok {
		return ls
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := *m.listeners.Load()
	if ls, ok := cur[name]; ok {
		return ls
	}
	ls := &listenerSet{
		name:       name,
		preLogin:   m.open.WithLabelValues(name, phasePreLogin),
		relayed:    m.open.WithLabelValues(name, phaseRelayed),
		in:         m.bytes.WithLabelValues(name, fromClient),
		out:        m.bytes.WithLabelValues(name, toClient),
		outcomes:   make(map[proxy.Outcome]prometheus.Counter, len(proxy.Outcomes)),
		handshakes: map[uint32]prometheus.Counter{},
	}
	// Every outcome, resolved up front so that each shows 0 before it
	// first happens.
	for _, o := range proxy.Outcomes {
		ls.outcomes[o] = m.sessions.WithLabelValues(name, string(o))
	}
	next := maps.Clone(cur)
	next[name] = ls
	m.listeners.Store(&next)
	return ls
}

// protocol returns name's children, resolving them on first use.
func (m *Metrics) protocol(name string) *protocolSet {
	if ps, ok := (*m.protocols.Load())[name]; ok {
		return ps
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := *m.protocols.Load()
	if ps, ok := cur[name]; ok {
		return ps
	}
	ps := &protocolSet{
		ok:           m.logins.WithLabelValues(name, resultOK),
		failed:       m.logins.WithLabelValues(name, resultFailed),
		busy:         m.logins.WithLabelValues(name, resultBusy),
		backendError: m.logins.WithLabelValues(name, resultBackendError),
		refused:      m.logins.WithLabelValues(name, resultRefused),
		plaintext:    m.plaintext.WithLabelValues(name),
		dialFailed:   m.dialFailures.WithLabelValues(name),
		latency:      m.loginLatency.WithLabelValues(name),
	}
	next := maps.Clone(cur)
	next[name] = ps
	m.protocols.Store(&next)
	return ps
}

// outcome returns the sessions counter for o, resolving an outcome package
// proxy added after this list on first use.
func (m *Metrics) outcome(ls *listenerSet, o proxy.Outcome) prometheus.Counter {
	if c, ok := ls.outcomes[o]; ok {
		return c
	}
	if o == "" {
		o = proxy.OutcomeInternal
	}
	return m.sessions.WithLabelValues(ls.name, string(o))
}

// handshake returns the handshakes counter for a version and cipher suite,
// named as crypto/tls names them. The set is bounded by what crypto/tls can
// negotiate.
func (m *Metrics) handshake(ls *listenerSet, version, cipher uint16) prometheus.Counter {
	key := uint32(version)<<16 | uint32(cipher)
	ls.mu.RLock()
	c, ok := ls.handshakes[key]
	ls.mu.RUnlock()
	if ok {
		return c
	}
	c = m.handshakes.WithLabelValues(ls.name, tls.VersionName(version), tls.CipherSuiteName(cipher))
	ls.mu.Lock()
	ls.handshakes[key] = c
	ls.mu.Unlock()
	return c
}
