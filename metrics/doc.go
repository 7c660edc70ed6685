// Package metrics is mailfront's Prometheus instrumentation: it implements
// proxy.Observer with counters, gauges and histograms named mailfront_*,
// and adds collectors read at scrape time for certificate expiry, the
// guard's blocked and penalised networks and the build version, beside the
// standard go_* and process_* collectors.
//
// Every label value is from a small fixed set: listener and protocol names
// and certificate names from the configuration, the engine's outcomes and
// reasons, TLS versions and cipher suites as crypto/tls names them. It does
// not take user names, client addresses or anything else a client chooses as
// a label, and it does not serve the metrics over HTTP (package admin does).
//
// Names and types follow the Prometheus naming conventions (base units,
// counters ending in _total, an _info metric for the build) and are exposed
// in the Prometheus text exposition format (version 0.0.4) by admin.
package metrics
