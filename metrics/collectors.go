package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	certExpiryDesc = prometheus.NewDesc(namespace+"_certificate_expiry_timestamp_seconds",
		"Expiry (NotAfter) of the certificate served for each configured name, as a Unix time.",
		[]string{"name"}, nil)
	guardBlockedDesc = prometheus.NewDesc(namespace+"_guard_blocked_networks",
		"Client networks the guard blocks now.", nil, nil)
	guardPenalisedDesc = prometheus.NewDesc(namespace+"_guard_penalised_networks",
		"Client networks the guard penalises now (delays their failed logins).", nil, nil)
)

// CertExpiry sets the function read at every scrape for
// mailfront_certificate_expiry_timestamp_seconds: the NotAfter of the
// certificate for each configured name (names with a zero time are left
// out). f must be safe for concurrent use and quick.
func (m *Metrics) CertExpiry(f func() map[string]time.Time) {
	m.scrape.certs.Store(&f)
}

// GuardStats sets the function read at every scrape for the guard's
// gauges. f must be safe for concurrent use and quick.
func (m *Metrics) GuardStats(f func() (blocked, penalised int)) {
	m.scrape.guard.Store(&f)
}

// CertReload counts a reload of certificates from files.
func (m *Metrics) CertReload(ok bool) {
	r := resultOK
	if !ok {
		r = resultError
	}
	m.certReloads.WithLabelValues(r).Inc()
}

// Build sets mailfront_build_info{version,commit,go} to 1, replacing any
// build set before.
func (m *Metrics) Build(version, commit, goVersion string) {
	m.build.Reset()
	m.build.WithLabelValues(version, commit, goVersion).Set(1)
}

// scrapeCollector reports the values read from other packages at scrape
// time. Until its functions are set, it reports nothing for them.
type scrapeCollector struct {
	certs atomic.Pointer[func() map[string]time.Time]
	guard atomic.Pointer[func() (blocked, penalised int)]
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- certExpiryDesc
	ch <- guardBlockedDesc
	ch <- guardPenalisedDesc
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	if f := c.certs.Load(); f != nil && *f != nil {
		for name, t := range (*f)() {
			if t.IsZero() {
				continue
			}
			ch <- gauge(certExpiryDesc, float64(t.Unix()), name)
		}
	}
	if f := c.guard.Load(); f != nil && *f != nil {
		blocked, penalised := (*f)()
		ch <- gauge(guardBlockedDesc, float64(blocked))
		ch <- gauge(guardPenalisedDesc, float64(penalised))
	}
}

// gauge is a constant gauge sample, or an invalid metric (which fails the
// scrape's gathering loudly) when a label value is not valid UTF-8.
func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}
