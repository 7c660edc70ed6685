package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/testpki"
)

// minimalYAML is one listener and a certificate, written to a file with
// extra appended; it returns the file's path.
func minimalYAML(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	cert, key := testpki.NewCA(t).WriteLeaf(t, dir, "mail.example.com")
	path := filepath.Join(dir, "mailfront.yaml")
	data := fmt.Sprintf("tls:\n  certificates: [{cert_file: %s, key_file: %s}]\n", cert, key) +
		"listeners:\n  - {protocol: imap, address: \":993\", tls: implicit, backend: \"127.0.0.1:143\"}\n" + extra
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// acmeYAML is the ACME section that brings the tls.acme rows into the
// effective settings, the rfc2136 ones included.
const acmeYAML = `  acme:
    domains: [mail.example.com]
    challenges:
      http: {address: ":80"}
      tls_alpn: {address: ":443"}
      dns: {provider: rfc2136, server: "ns1.example.com:53", tsig_key: mailfront., tsig_secret: c2VjcmV0}
`

// runEffective runs "mailfront validate --config path --effective" and
// returns its settings by key, list indexes written "[]" as README does.
func runEffective(t *testing.T, path string) map[string]string {
	t.Helper()
	var out, errs bytes.Buffer
	if code := Main([]string{"validate", "--config", path, "--effective"}, &out, &errs); code != 0 {
		t.Fatalf("validate --effective: exit %d\n%s", code, errs.String())
	}
	index := regexp.MustCompile(`\[\d+\]`)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("line %q is not key: value", line)
		}
		k = index.ReplaceAllString(k, "[]")
		if _, dup := got[k]; !dup {
			got[k] = v
		}
	}
	return got
}

// referenceRow is one row of README.md's configuration reference.
type referenceRow struct {
	keys []string // full key paths
	def  string   // the default cell as written
}

// readmeReference reads the configuration reference table.
func readmeReference(t *testing.T) []referenceRow {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Configuration reference\n")
	if !ok {
		t.Fatal("README.md has no configuration reference")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	code := regexp.MustCompile("`([^`]*)`")
	var rows []referenceRow
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.SplitN(strings.Trim(line, "| "), " | ", 3)
		if len(cells) != 3 {
			t.Fatalf("row %q: want | key | default | meaning |", line)
		}
		var r referenceRow
		for i, m := range code.FindAllStringSubmatch(cells[0], -1) {
			k := m[1]
			if i > 0 && strings.HasPrefix(k, ".") {
				first := r.keys[0]
				k = first[:strings.LastIndex(first, ".")] + k
			}
			r.keys = append(r.keys, k)
		}
		r.def = cells[1]
		rows = append(rows, r)
	}
	if len(rows) < 50 {
		t.Fatalf("got %d rows in the configuration reference, want the whole table", len(rows))
	}
	return rows
}

// effectiveRun is the effective settings of one test configuration, and
// which keys it sets itself (where README's defaults cannot show).
type effectiveRun struct {
	got  map[string]string
	sets func(key string) bool
}

// TestReadmeDefaults checks README.md's configuration reference against
// the values in force: every literal default is what `validate
// --effective` prints for a minimal configuration (one listener and a
// certificate; the ACME rows with an ACME section instead), "(none)" and
// "(off)" rows print nothing or say so, every other row's key is printed,
// and every printed key has a row. README and code cannot drift apart.
func TestReadmeDefaults(t *testing.T) {
	t.Parallel()
	setsChallenges := func(k string) bool {
		return k == "tls.acme.domains" || strings.HasPrefix(k, "tls.acme.challenges.")
	}
	runs := []effectiveRun{
		{runEffective(t, minimalYAML(t, "")), func(string) bool { return false }},
		{runEffective(t, acmeConfig(t, acmeYAML)), setsChallenges},
		{runEffective(t, acmeConfig(t, acmeExecYAML)), setsChallenges},
	}
	minimal := runs[0].got
	lookup := func(k string) (string, bool) {
		for _, r := range runs {
			if v, ok := r.got[k]; ok {
				return v, true
			}
		}
		return "", false
	}
	code := regexp.MustCompile("`([^`]*)`")
	rows := readmeReference(t)
	for _, r := range rows {
		var lits []string
		if strings.HasPrefix(r.def, "`") { // "(required with `acme`)" holds no default
			for _, m := range code.FindAllStringSubmatch(r.def, -1) {
				lits = append(lits, m[1])
			}
		}
		for i, k := range r.keys {
			got, printed := lookup(k)
			switch {
			case len(lits) > 0:
				want := lits[0]
				if len(lits) == len(r.keys) {
					want = lits[i]
				} else if len(lits) > 1 && len(r.keys) > 1 {
					t.Errorf("%s: %d defaults for %d keys", k, len(lits), len(r.keys))
					continue
				}
				want = expandPattern(want, minimal)
				if !printed {
					t.Errorf("%s: README says %s, validate --effective prints no such key", k, want)
				} else if !sameValue(got, want) {
					t.Errorf("%s: got %s in force, README says %s", k, got, want)
				}
			case strings.HasPrefix(r.def, "(none)"), strings.HasPrefix(r.def, "(off)"):
				for _, run := range runs {
					v, ok := run.got[k]
					if ok && !run.sets(k) && v != valueNone && v != "[]" && v != valueOff {
						t.Errorf("%s: got %s in force, README says %s", k, v, r.def)
					}
				}
			default: // (required) or prose: the key must at least be known
				if !printed && !strings.HasSuffix(k, "[]") {
					t.Errorf("%s: README has a row (%s), validate --effective prints no such key", k, r.def)
				}
			}
		}
	}
	for _, run := range runs {
		for k := range run.got {
			if !documented(k, rows) {
				t.Errorf("%s: printed by validate --effective, missing from README's configuration reference", k)
			}
		}
	}
}

// acmeExecYAML is acmeYAML with the exec provider instead.
const acmeExecYAML = `  acme:
    domains: [mail.example.com]
    challenges:
      dns: {provider: exec, command: [/bin/sh, /etc/mailfront/dns-hook]}
`

// acmeConfig is the minimal configuration with an ACME section instead of
// the certificate.
func acmeConfig(t *testing.T, acme string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mailfront.yaml")
	data := "tls:\n" + acme +
		"listeners:\n  - {protocol: imap, address: \":993\", tls: implicit, backend: \"127.0.0.1:143\"}\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// expandPattern fills in a default written as a pattern
// ("<protocol>-<tls>-<port>") from the minimal configuration's listener.
func expandPattern(want string, got map[string]string) string {
	addr := got["listeners[].address"]
	return strings.NewReplacer(
		"<protocol>", got["listeners[].protocol"],
		"<tls>", got["listeners[].tls"],
		"<port>", addr[strings.LastIndex(addr, ":")+1:],
	).Replace(want)
}

// sameValue compares a printed value with README's: quotes aside, and
// durations by their length (README's 60s is the printed 1m).
func sameValue(got, want string) bool {
	want = strings.Trim(want, `"`)
	if got == want {
		return true
	}
	g, gerr := time.ParseDuration(got)
	w, werr := time.ParseDuration(want)
	return gerr == nil && werr == nil && g == w
}

// documented reports whether README has a row for a printed key: the key
// itself, or a list row ("tls.certificates[]") it is a field of.
func documented(key string, rows []referenceRow) bool {
	for _, r := range rows {
		for _, k := range r.keys {
			if k == key || strings.HasSuffix(k, "[]") && strings.HasPrefix(key, k+".") {
				return true
			}
		}
	}
	return false
}

// TestEffectiveSettings: set values are printed as set, through the same
// resolution: a negative value turns a limit off, a zero delay follows the
// other one, secrets are hidden, prefixes are normalised.
func TestEffectiveSettings(t *testing.T) {
	t.Parallel()
	got := runEffective(t, minimalYAML(t, `limits:
  keepalive: -1s
  max_connections: -1
  connections_per_network: -1
  handshakes_per_minute: 100
  idle: 90s
  imap_idle: 45m
relay: {mode: standard}
shutdown: {drain: -1s}
guard:
  trusted: [192.0.2.7, "2001:db8::/32"]
  base_delay: 20s
  logins_in_flight: -1
  parallel_logins: 8
access: {deny: [198.51.100.0/24]}
log: {format: json, level: WARN}
`))
	for k, want := range map[string]string{
		"limits.keepalive":               valueOff,
		"limits.max_connections":         valueOff,
		"limits.connections_per_network": valueOff,
		"limits.handshakes_per_minute":   "100",
		"limits.idle":                    "1m30s",
		"limits.imap_idle":               "45m",
		"relay.mode":                     "standard",
		"shutdown.drain":                 valueOff,
		"guard.trusted":                  "[192.0.2.7/32, 2001:db8::/32]",
		"guard.base_delay":               "20s",
		"guard.max_delay":                "20s", // never below the base delay
		"guard.logins_in_flight":         valueOff,
		"guard.parallel_logins":          "8",
		"access.deny":                    "[198.51.100.0/24]",
		"access.allow":                   "[]",
		"log.format":                     "json",
		"log.level":                      "warn",
		"listeners[].name":               "imap-implicit-993",
		"listeners[].plaintext_refusal":  "(unused: implicit TLS)",
		"admin.address":                  valueOff,
	} {
		if got[k] != want {
			t.Errorf("%s: got %q, want %q", k, got[k], want)
		}
	}
	acme := runEffective(t, acmeConfig(t, acmeYAML))
	for k, want := range map[string]string{
		"tls.acme.challenges.dns.tsig_secret":    valueHidden,
		"tls.acme.challenges.dns.tsig_algorithm": "hmac-sha256",
		"tls.acme.eab.mac_key":                   valueNone,
	} {
		if acme[k] != want {
			t.Errorf("%s: got %q, want %q", k, acme[k], want)
		}
	}
}

// TestValidateRelayMode: a relay mode that does not exist is refused with
// its key path and what to write instead.
func TestValidateRelayMode(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	code := Main([]string{"validate", "--config", minimalYAML(t, "relay: {mode: fast}\n")}, &out, &out)
	if want := `relay.mode: "fast" is neither optimized nor standard`; code != 1 || !strings.Contains(out.String(), want) {
		t.Errorf("got exit %d and %q, want exit 1 and %q", code, out.String(), want)
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0s", 500 * time.Millisecond: "500ms", 60 * time.Second: "1m", 90 * time.Second: "1m30s",
		10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Minute: "1h30m", time.Hour + time.Second: "1h0m1s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v): got %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(formatDuration(d)); err != nil || back != d {
			t.Errorf("formatDuration(%v) = %q does not parse back: %v %v", d, formatDuration(d), back, err)
		}
	}
}
