//go:build integration

package integration

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The monitoring files operators load (deploy/prometheus, deploy/grafana).
var (
	alertRules     = repoPath("deploy/prometheus/alerts.yaml")
	alertRuleTests = repoPath("deploy/prometheus/alerts_test.yaml")
	dashboardFile  = repoPath("deploy/grafana/mailfront.json")
)

// Listener names of TestMonitoring's two extra listeners.
const (
	lnMonPP   = "it-mon-pp"   // implicit TLS IMAP, PROXY headers from 127.0.0.1
	lnMonDeny = "it-mon-deny" // implicit TLS IMAP, 127.0.0.2 denied
)

// TestMonitoring checks the alerting rules and the Grafana dashboard
// against the binary under test:
//   - promtool check rules passes on alerts.yaml and promtool test rules
//     on alerts_test.yaml (synthetic series that fire each alert, and
//     the cases next to them that must not);
//   - every series selector in the rules and in the dashboard's queries
//     (metric name and label matchers; "up" is Prometheus's own, and job
//     and instance are the labels Prometheus adds) selects at least one
//     series in a real scrape of mailfront's /metrics, after traffic that
//     makes the labelled series exist: a login, a TLS 1.1 client refused,
//     a connection without its PROXY header, a denied address. Every
//     label the queries group by is on one of the metrics they use;
//   - every dashboard query, with Grafana's variables filled in, is valid
//     PromQL (promtool check rules on a rules file made of them);
//   - the dashboard is a dashboard: a uid, a title, a Prometheus data
//     source variable that every panel and query uses, panels with queries
//     (refIds unique within each), unique ids, on the 24-column grid
//     without overlapping, and no variable used that it does not define.
func TestMonitoring(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	t.Run("promtool check rules", func(t *testing.T) {
		if r := runClient(t, nil, nil, promtool, "check", "rules", alertRules); r.code != 0 {
			t.Errorf("promtool check rules %s: %s", alertRules, r)
		}
	})
	t.Run("promtool test rules", func(t *testing.T) {
		if r := runClient(t, nil, nil, promtool, "test", "rules", alertRuleTests); r.code != 0 {
			t.Errorf("promtool test rules %s: %s", alertRuleTests, r)
		}
	})

	rules := ruleExprs(t)
	dash := readDashboard(t)
	t.Run("dashboard", func(t *testing.T) { checkDashboard(t, dash) })
	t.Run("dashboard PromQL", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
		for i, q := range dash.queries() {
			fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %q\n", i, grafanaToPromQL(q.expr))
		}
		path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
		writeFile(t, path, []byte(b.String()), 0o644)
		if r := runClient(t, nil, nil, promtool, "check", "rules", path); r.code != 0 {
			t.Errorf("the dashboard's queries are not all valid PromQL: %s\n%s", r, b.String())
		}
	})

	scrape, admin := monitoredScrape(t, rules, dash)
	t.Run("rules name real series", func(t *testing.T) {
		for _, q := range rules {
			checkQuery(t, scrape, q)
		}
	})
	t.Run("dashboard names real series", func(t *testing.T) {
		for _, q := range dash.queries() {
			checkQuery(t, scrape, q)
		}
	})
	t.Run("Prometheus", func(t *testing.T) {
		prom := startPrometheus(t, tool(t, "prometheus", "prometheus"), admin)
		checkRulesHealthy(t, prom)
		for _, q := range dash.queries() {
			if n := promQuery(t, prom, q.expr); n == 0 {
				t.Errorf("%s: %q returns nothing from Prometheus scraping mailfront", q.where, q.expr)
			}
		}
	})
}

// query is one PromQL expression and where it comes from, for messages.
type query struct {
	where, expr string
}

// ruleExprs reads the expressions of alerts.yaml. The file is YAML that
// promtool has checked; its expressions are either on the expr: line or a
// block scalar ("expr: |") indented below it.
func ruleExprs(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var out []query
	alert := ""
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if a, ok := strings.CutPrefix(l, "- alert: "); ok {
			alert = a
		}
		e, ok := strings.CutPrefix(l, "expr: ")
		if !ok {
			continue
		}
		if e == "|" || e == ">" || e == "|-" || e == ">-" {
			indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
			var parts []string
			for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) > indent) {
				i++
				parts = append(parts, strings.TrimSpace(lines[i]))
			}
			e = strings.Join(parts, " ")
		}
		out = append(out, query{where: "alert " + alert, expr: e})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no expr found", alertRules)
	}
	return out
}

// monitoredScrape starts Dovecot and mailfront with an admin endpoint and
// two more listeners, causes the traffic that makes every labelled series
// the queries select exist, and returns the scrape in which they all do
// (or the last one, after logTimeout: the checks then say what is
// missing).
func monitoredScrape(t *testing.T, rules []query, dash *dashboard) (scrapeSeries, string) {
	t.Helper()
	dv := startDovecot(t)
	adminYAML, admin := adminSection(t)
	mf := startFront(t, dv, frontSpec{yaml: adminYAML, extra: []extraListener{
		{name: lnMonPP, protocol: "imap", tls: "implicit", options: trustLocalBalancer},
		{name: lnMonDeny, protocol: "imap", tls: "implicit", options: `deny: ["127.0.0.2/32"]`},
	}})
	waitAdmin(t, mf, admin)
	e := &env{dv: dv, mf: mf.front}

	// A login and a relayed session: TLS handshakes, logins, bytes, the
	// backend's login time.
	c := e.dialIMAP(t, false, nil)
	if err := c.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatalf("IMAPS login: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("IMAPS logout: %v", err)
	}
	// A client that offers TLS 1.1 at most: a protocol-version failure.
	if raw, err := net.DialTimeout("tcp", mf.imaps, 5*time.Second); err != nil {
		t.Fatal(err)
	} else {
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		old := tls.Client(raw, &tls.Config{ServerName: "localhost", RootCAs: mf.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err := old.Handshake(); err == nil {
			t.Errorf("a TLS 1.1 handshake succeeded, want it refused")
		}
		raw.Close()
	}
	// A TLS client from the trusted balancer address without a PROXY
	// header: refused as missing.
	if raw, err := net.DialTimeout("tcp", mf.extra[lnMonPP], 5*time.Second); err != nil {
		t.Fatal(err)
	} else {
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tlsClient(mf, raw).Handshake(); err == nil {
			t.Errorf("%s: a handshake without a PROXY header succeeded from the trusted balancer", lnMonPP)
		}
		raw.Close()
	}
	// A denied address: closed before anything.
	if raw, err := dialFrom("127.0.0.2", mf.extra[lnMonDeny]); err != nil {
		t.Fatal(err)
	} else {
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		raw.Read(make([]byte, 1))
		raw.Close()
	}

	queries := append(append([]query{}, rules...), dash.queries()...)
	deadline := time.Now().Add(logTimeout)
	for {
		code, body := adminGet(t, admin, "/metrics")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics: got %d, want 200\n%s", code, body)
		}
		s := parseScrape(t, body)
		missing := 0
		for _, q := range queries {
			for _, sel := range promSelectors(q.expr) {
				if sel.name != "up" && !s.any(sel) {
					missing++
				}
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			if missing != 0 {
				t.Logf("scrape:\n%s", body)
			}
			return s, admin
		}
		time.Sleep(pollEvery)
	}
}

// checkQuery checks that every selector of q selects a series in the
// scrape and every label q groups or matches by is on one of the metrics
// it uses.
func checkQuery(t *testing.T, s scrapeSeries, q query) {
	t.Helper()
	sels := promSelectors(q.expr)
	if len(sels) == 0 {
		t.Errorf("%s: %q names no metric", q.where, q.expr)
		return
	}
	labels := map[string]bool{"job": true, "instance": true}
	for _, sel := range sels {
		if sel.name == "up" {
			continue
		}
		if !s.any(sel) {
			if s.hasName(sel.name) {
				t.Errorf("%s: %s selects no series of %s in the scrape (%q)", q.where, sel, sel.name, q.expr)
			} else {
				t.Errorf("%s: no metric %s in the scrape (%q)", q.where, sel.name, q.expr)
			}
			continue
		}
		for l := range s.labels(sel.name) {
			labels[l] = true
		}
	}
	for _, l := range promGrouping(q.expr) {
		if !labels[l] {
			t.Errorf("%s: groups by %s, which none of its metrics has (%q)", q.where, l, q.expr)
		}
	}
}

// scrapeSeries is a Prometheus text-format scrape: each series' name and
// labels.
type scrapeSeries []map[string]string

// parseScrape reads the sample lines of a text-format scrape; each map
// holds the labels and, under __name__, the series' name.
func parseScrape(t *testing.T, b []byte) scrapeSeries {
	t.Helper()
	var out scrapeSeries
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		m := map[string]string{}
		name, rest, hasLabels := strings.Cut(l, "{")
		if !hasLabels {
			name, _, _ = strings.Cut(l, " ")
		}
		m["__name__"] = name
		for hasLabels && rest != "" && rest[0] != '}' {
			k, v, ok := strings.Cut(rest, `="`)
			if !ok {
				t.Fatalf("scrape line %q: cannot read the labels", l)
			}
			var val strings.Builder
			i := 0
			for ; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
					switch v[i] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(v[i])
					}
					continue
				}
				val.WriteByte(v[i])
			}
			m[strings.TrimPrefix(k, ",")] = val.String()
			rest = strings.TrimPrefix(v[min(i+1, len(v)):], ",")
		}
		out = append(out, m)
	}
	return out
}

// any reports whether some series matches sel; matchers on job and
// instance, which Prometheus adds at scrape time, match anything.
func (s scrapeSeries) any(sel selector) bool {
	for _, m := range s {
		if m["__name__"] == sel.name && sel.matches(m) {
			return true
		}
	}
	return false
}

func (s scrapeSeries) hasName(name string) bool {
	return slices.ContainsFunc(s, func(m map[string]string) bool { return m["__name__"] == name })
}

// labels is the set of label names the series called name carry.
func (s scrapeSeries) labels(name string) map[string]bool {
	out := map[string]bool{}
	for _, m := range s {
		if m["__name__"] == name {
			for k := range m {
				out[k] = true
			}
		}
	}
	return out
}

// selector is a PromQL instant or range vector selector: a metric name
// and label matchers.
type selector struct {
	name     string
	matchers []matcher
}

type matcher struct {
	label, op, value string
}

func (sel selector) String() string {
	var ms []string
	for _, m := range sel.matchers {
		ms = append(ms, fmt.Sprintf("%s%s%q", m.label, m.op, m.value))
	}
	return sel.name + "{" + strings.Join(ms, ",") + "}"
}

func (sel selector) matches(series map[string]string) bool {
	for _, m := range sel.matchers {
		if m.label == "job" || m.label == "instance" {
			continue
		}
		v := series[m.label]
		var ok bool
		switch m.op {
		case "=":
			ok = v == m.value
		case "!=":
			ok = v != m.value
		case "=~", "!~":
			re, err := regexp.Compile("^(?:" + m.value + ")$")
			if err != nil {
				return false
			}
			ok = re.MatchString(v) == (m.op == "=~")
		}
		if !ok {
			return false
		}
	}
	return true
}

// promToken is a token of PromQL as the checks need it: identifiers,
// strings (unquoted), numbers and durations, and single punctuation or
// operator characters.
type promToken struct {
	kind byte // 'i' identifier, 's' string, 'n' number or duration, 'p' punctuation
	text string
}

// promTokens splits a PromQL expression (Grafana's variables filled in).
// It is a tokenizer for the expressions of this repository's rules and
// dashboard, not a PromQL parser: the PromQL itself is checked by promtool.
func promTokens(expr string) []promToken {
	var out []promToken
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			var b strings.Builder
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' && j+1 < len(expr) {
					j++
				}
				b.WriteByte(expr[j])
				j++
			}
			out = append(out, promToken{'s', b.String()})
			i = j + 1
		case c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(expr) && (expr[j] == '_' || expr[j] == ':' || expr[j] >= 'a' && expr[j] <= 'z' || expr[j] >= 'A' && expr[j] <= 'Z' || expr[j] >= '0' && expr[j] <= '9') {
				j++
			}
			out = append(out, promToken{'i', expr[i:j]})
			i = j
		case c >= '0' && c <= '9' || c == '.':
			j := i
			for j < len(expr) && (expr[j] == '.' || expr[j] >= '0' && expr[j] <= '9' || expr[j] >= 'a' && expr[j] <= 'z' || expr[j] >= 'A' && expr[j] <= 'Z') {
				j++
			}
			out = append(out, promToken{'n', expr[i:j]})
			i = j
		case c == '[':
			// A range or subquery: durations only.
			j := strings.IndexByte(expr[i:], ']')
			if j < 0 {
				j = len(expr) - i - 1
			}
			i += j + 1
		default:
			if i+1 < len(expr) && strings.Contains("=~ !~ != == <= >=", expr[i:i+2]) {
				out = append(out, promToken{'p', expr[i : i+2]})
				i += 2
				continue
			}
			out = append(out, promToken{'p', string(c)})
			i++
		}
	}
	return out
}

// promKeywords are identifiers that are not metric names.
var promKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "inf": true, "nan": true, "Inf": true, "NaN": true,
}

// promSelectors returns the vector selectors of expr.
func promSelectors(expr string) []selector {
	toks := promTokens(expr)
	var out []selector
	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		if tk.kind != 'i' {
			continue
		}
		next := func(k int) promToken {
			if i+k < len(toks) {
				return toks[i+k]
			}
			return promToken{}
		}
		if next(1).text == "(" {
			if promKeywords[tk.text] {
				// by (...), on (...): label lists, not selectors.
				for i < len(toks) && toks[i].text != ")" {
					i++
				}
			}
			continue // a function or an aggregation
		}
		if promKeywords[tk.text] || next(1).text == "by" || next(1).text == "without" {
			continue // a keyword, or an aggregation: sum by (...) (...)
		}
		sel := selector{name: tk.text}
		if next(1).text == "{" {
			i += 2
			for i+2 < len(toks) && toks[i].text != "}" {
				sel.matchers = append(sel.matchers, matcher{toks[i].text, toks[i+1].text, toks[i+2].text})
				i += 3
				if i < len(toks) && toks[i].text == "," {
					i++
				}
			}
		}
		out = append(out, sel)
	}
	return out
}

// promGrouping returns the labels expr groups or matches by (by, without,
// on, ignoring, group_left, group_right).
func promGrouping(expr string) []string {
	toks := promTokens(expr)
	var out []string
	for i := 0; i+1 < len(toks); i++ {
		if toks[i].kind != 'i' || !promKeywords[toks[i].text] || toks[i+1].text != "(" {
			continue
		}
		for i += 2; i < len(toks) && toks[i].text != ")"; i++ {
			if toks[i].kind == 'i' {
				out = append(out, toks[i].text)
			}
		}
	}
	return out
}

// grafanaVars are the values the checks give Grafana's variables: the
// dashboard's own (their "All" value) and the built-in intervals.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__interval", "1m",
	"$__range", "1h",
	"${instance}", ".+", "$instance", ".+",
	"${listener}", ".+", "$listener", ".+",
)

// grafanaToPromQL fills in Grafana's variables.
func grafanaToPromQL(expr string) string {
	return grafanaVars.Replace(expr)
}

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Type       string          `json:"type"`
			Name       string          `json:"name"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboardPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // a collapsed row's
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readDashboard(t *testing.T) *dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// allPanels is every panel, those inside collapsed rows included.
func (d *dashboard) allPanels() []dashboardPanel {
	var out []dashboardPanel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// queries is every panel query and every query variable's label_values
// (as a selector of the metric it reads, grouped by the label).
func (d *dashboard) queries() []query {
	var out []query
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, query{where: fmt.Sprintf("panel %q, query %s", p.Title, tg.RefID), expr: grafanaToPromQL(tg.Expr)})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		// The query is an object with the PromQL in "query" (Grafana 9
		// and later), or the PromQL itself.
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			json.Unmarshal(v.Query, &q.Query)
		}
		if m := labelValues.FindStringSubmatch(q.Query); m != nil {
			out = append(out, query{where: "variable " + v.Name, expr: grafanaToPromQL("count by (" + m[2] + ") (" + m[1] + ")")})
		} else {
			out = append(out, query{where: "variable " + v.Name, expr: grafanaToPromQL(q.Query)})
		}
	}
	return out
}

// checkDashboard checks the dashboard's structure as Grafana would need
// it to import and show every panel.
func checkDashboard(t *testing.T, d *dashboard) {
	t.Helper()
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want a uid, a title and schemaVersion 36 or later (data source references by uid)", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type == "datasource" {
			var q string
			if json.Unmarshal(v.Query, &q); q != "prometheus" {
				t.Errorf("variable %s: data source type %q, want prometheus", v.Name, q)
			}
		}
	}
	dsVar := ""
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			dsVar = "${" + v.Name + "}"
		}
	}
	if dsVar == "" {
		t.Fatalf("no data source variable: the dashboard would be tied to one Prometheus")
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != dsVar) {
			t.Errorf("variable %s: data source %+v, want %s", v.Name, v.Datasource, dsVar)
		}
	}
	used := regexp.MustCompile(`\$\{?(\w+)`)
	ids := map[int]bool{}
	var cells [][4]int
	queries := 0
	for _, p := range d.allPanels() {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("panel %q: gridPos %+v is off the 24-column grid", p.Title, g)
		}
		for _, c := range cells {
			if g.X < c[0]+c[2] && c[0] < g.X+g.W && g.Y < c[1]+c[3] && c[1] < g.Y+g.H {
				t.Errorf("panel %q: gridPos %+v overlaps another panel at %v", p.Title, g, c)
			}
		}
		cells = append(cells, [4]int{g.X, g.Y, g.W, g.H})
		if p.Type == "row" {
			continue
		}
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if p.Datasource == nil || p.Datasource.UID != dsVar || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: data source %+v, want prometheus %s", p.Title, p.Datasource, dsVar)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			queries++
			if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: query %q refId %q: want an expression and a refId of its own", p.Title, tg.Expr, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != dsVar {
				t.Errorf("panel %q, query %s: data source %+v, want %s", p.Title, tg.RefID, tg.Datasource, dsVar)
			}
			for _, m := range used.FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[m[1]] && !strings.HasPrefix(m[1], "__") {
					t.Errorf("panel %q, query %s: uses $%s, which the dashboard does not define", p.Title, tg.RefID, m[1])
				}
			}
		}
	}
	t.Logf("%d panels, %d queries", len(ids), queries)
}

// prometheus is a Prometheus server the test runs.
type prometheus struct {
	addr string
	log  logFile
}

// startPrometheus runs Debian's Prometheus server with alerts.yaml as its
// rules, scraping mailfront's admin endpoint at admin every second as job
// "mailfront", its storage in a temporary directory, and waits until it
// has scraped mailfront twice (rate() needs two samples).
func startPrometheus(t *testing.T, bin, admin string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	p := &prometheus{
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(t, 1)[0])),
		log:  logFile{filepath.Join(dir, "prometheus.log")},
	}
	conf := fmt.Sprintf(`# generated by mailfront's integration suite
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: mailfront
    static_configs:
      - targets: [%q]
`, alertRules, admin)
	confPath := filepath.Join(dir, "prometheus.yml")
	writeFile(t, confPath, []byte(conf), 0o644)
	exited := make(chan struct{})
	startGroup(t, "prometheus", p.log.path, exited, func(*exec.Cmd) {
		if t.Failed() {
			t.Logf("prometheus.yml:\n%s", conf)
			t.Logf("prometheus log:\n%s", p.log.String())
		}
	}, bin, "--config.file="+confPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+p.addr, "--log.level=info")
	p.log.wait(t, 0, regexp.MustCompile(`Server is ready to receive web requests`), exited)
	deadline := time.Now().Add(logTimeout)
	for promQuery(t, p, `count_over_time(up{job="mailfront"}[1m]) >= 2 and up{job="mailfront"} == 1`) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus has not scraped mailfront twice within %v", logTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

// promAPI gets a Prometheus HTTP API path and decodes its data.
func promAPI(t *testing.T, p *prometheus, path string, data any) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + p.addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("GET %s: %d %s %s (%v)", path, resp.StatusCode, r.Status, r.Error, err)
	}
	if err := json.Unmarshal(r.Data, data); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// promQuery evaluates expr now and returns how many series it gave.
func promQuery(t *testing.T, p *prometheus, expr string) int {
	t.Helper()
	var data struct {
		Result []json.RawMessage `json:"result"`
	}
	promAPI(t, p, "/api/v1/query?query="+url.QueryEscape(expr), &data)
	return len(data.Result)
}

// checkRulesHealthy waits until Prometheus has evaluated every rule of
// alerts.yaml once and checks none failed (an evaluation error, such as
// many-to-many matching, shows only with real series), and that
// MailfrontDown is quiet while mailfront is up.
func checkRulesHealthy(t *testing.T, p *prometheus) {
	t.Helper()
	type rule struct {
		Name      string `json:"name"`
		Health    string `json:"health"`
		LastError string `json:"lastError"`
		State     string `json:"state"`
	}
	deadline := time.Now().Add(logTimeout)
	for {
		var data struct {
			Groups []struct {
				Rules []rule `json:"rules"`
			} `json:"groups"`
		}
		promAPI(t, p, "/api/v1/rules", &data)
		var rules []rule
		for _, g := range data.Groups {
			rules = append(rules, g.Rules...)
		}
		pending := len(rules) == 0
		for _, r := range rules {
			pending = pending || r.Health == "unknown"
		}
		if !pending {
			for _, r := range rules {
				if r.Health != "ok" {
					t.Errorf("rule %s: health %s: %s", r.Name, r.Health, r.LastError)
				}
				if r.Name == "MailfrontDown" && r.State != "inactive" {
					t.Errorf("rule MailfrontDown is %s while Prometheus scrapes mailfront", r.State)
				}
			}
			t.Logf("%d rules evaluated by Prometheus", len(rules))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus has not evaluated every rule within %v: %+v", logTimeout, rules)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
