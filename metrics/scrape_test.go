package metrics_test

import (
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mailfront/mailfront/admin"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// family is what a mailfront metric family must look like: its type and
// exactly these label names (histograms' "le" aside).
type family struct {
	typ    dto.MetricType
	labels []string
}

// wantFamilies is every mailfront_ family and its label names: a label
// added (above all one that could carry a user or an address) fails the
// tests until it is decided on here.
var wantFamilies = map[string]family{
	"mailfront_sessions_total":                       {dto.MetricType_COUNTER, []string{"listener", "outcome"}},
	"mailfront_sessions_open":                        {dto.MetricType_GAUGE, []string{"listener", "phase"}},
	"mailfront_relayed_bytes_total":                  {dto.MetricType_COUNTER, []string{"direction", "listener"}},
	"mailfront_connections_refused_total":            {dto.MetricType_COUNTER, []string{"listener", "reason"}},
	"mailfront_tls_handshakes_total":                 {dto.MetricType_COUNTER, []string{"cipher_suite", "listener", "version"}},
	"mailfront_tls_handshake_failures_total":         {dto.MetricType_COUNTER, []string{"listener", "reason"}},
	"mailfront_logins_total":                         {dto.MetricType_COUNTER, []string{"protocol", "result"}},
	"mailfront_plaintext_logins_refused_total":       {dto.MetricType_COUNTER, []string{"protocol"}},
	"mailfront_backend_dial_failures_total":          {dto.MetricType_COUNTER, []string{"protocol"}},
	"mailfront_backend_login_duration_seconds":       {dto.MetricType_HISTOGRAM, []string{"protocol"}},
	"mailfront_guard_delay_seconds":                  {dto.MetricType_HISTOGRAM, nil},
	"mailfront_guard_blocked_networks":               {dto.MetricType_GAUGE, nil},
	"mailfront_guard_penalised_networks":             {dto.MetricType_GAUGE, nil},
	"mailfront_certificate_expiry_timestamp_seconds": {dto.MetricType_GAUGE, []string{"name"}},
	"mailfront_certificate_reloads_total":            {dto.MetricType_COUNTER, []string{"result"}},
	"mailfront_relay_selftest_failures_total":        {dto.MetricType_COUNTER, []string{"shortcut"}},
	"mailfront_build_info":                           {dto.MetricType_GAUGE, []string{"commit", "go", "version"}},
	"mailfront_proxy_headers_total":                  {dto.MetricType_COUNTER, []string{"listener", "result"}},
}

// scrape serves g with package admin on a real socket, fetches /metrics
// as a Prometheus server would and parses the text exposition format.
func scrape(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	srv, err := admin.Start(admin.Options{Address: "127.0.0.1:0", Gatherer: g})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + srv.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: got %s, want 200; body %q", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: got Content-Type %q, want the text format 0.0.4", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse scrape: %v\n%s", err, body)
	}
	return fams
}

// sample finds the metric of family name whose labels are exactly labels
// ("le" aside), or nil.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		if maps.Equal(labelMap(m), labels) {
			return m
		}
	}
	return nil
}

// series formats a sample's name and labels as PromQL would.
func series(name string, labels map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + strconv.Quote(labels[k]))
	}
	return name + "{" + b.String() + "}"
}

func labelMap(m *dto.Metric) map[string]string {
	got := map[string]string{}
	for _, lp := range m.GetLabel() {
		got[lp.GetName()] = lp.GetValue()
	}
	return got
}

// value is a counter's, gauge's or untyped sample's value.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	m := sample(fams, name, labels)
	if m == nil {
		t.Fatalf("%s: no such sample", series(name, labels))
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	default:
		return m.Untyped.GetValue()
	}
}

// checkFamilies fails for a family outside go_, process_ and the mailfront_
// set, a mailfront_ family of the wrong type or label names, and a label
// value containing any of secrets.
func checkFamilies(t *testing.T, fams map[string]*dto.MetricFamily, secrets ...string) {
	t.Helper()
	for name, f := range fams {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		want, ok := wantFamilies[name]
		if !ok {
			t.Errorf("unexpected metric family %s", name)
			continue
		}
		if f.GetType() != want.typ {
			t.Errorf("%s: got type %v, want %v", name, f.GetType(), want.typ)
		}
		for _, m := range f.GetMetric() {
			lm := labelMap(m)
			if got := slices.Sorted(maps.Keys(lm)); !slices.Equal(got, want.labels) && !(len(got) == 0 && len(want.labels) == 0) {
				t.Errorf("%s: got label names %q, want %q", name, got, want.labels)
			}
			for k, v := range lm {
				for _, s := range secrets {
					if strings.Contains(v, s) {
						t.Errorf("%s: label %s=%q contains %q", name, k, v, s)
					}
				}
			}
		}
	}
}
