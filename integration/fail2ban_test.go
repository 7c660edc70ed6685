//go:build integration

package integration

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/pop3client"
)

// fail2banFilter is the filter operators install (deploy/fail2ban).
var (
	fail2banFilter = repoPath("deploy/fail2ban/filter.d/mailfront.conf")
	fail2banJail   = repoPath("deploy/fail2ban/jail.d/mailfront.local")
)

// repoPath is a path in the repository, from this directory.
func repoPath(rel string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", filepath.FromSlash(rel))
}

// hostileUser is a user name that tries to put another address in the
// log line (text and JSON shapes); it must not get 192.0.2.1 banned, and
// the failure must still count against its real sender.
func hostileUser(format string) string {
	if format == "json" {
		return `x","remote":"192.0.2.1:1","user":"x`
	}
	return `x remote=192.0.2.1:1 outcome=auth-failed`
}

// TestFail2ban runs Debian's fail2ban-regex with deploy/fail2ban's filter
// over logs the real binary wrote, in text and in JSON: it must match the
// "login failed" lines and only those, with the client's address (IPv4
// and, where the machine has ::1, IPv6), and read each line's own time.
// The same logs also hold a successful login, a login refused before TLS,
// a backend that is down, a right POP3 password answered -ERR [IN-USE]
// (logged as "mailbox busy" with code=IN-USE) and (with the guard) a
// network block: none may count. A user name crafted to look like another address must not get
// that address banned. The jail file must load in fail2ban-client.
func TestFail2ban(t *testing.T) {
	regexBin := tool(t, "fail2ban-regex", "fail2ban")
	checkJailLoads(t)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			// In parallel, each with its own Dovecot: Dovecot takes 10 s
			// to answer IN-USE.
			t.Parallel()
			dv := startDovecotWith(t, dovecotOptions{NoAuthPenalty: true, POP3Lock: true})
			mf, want := fail2banScenario(t, dv, format)
			// fail2ban reads a copy: mailfront may log more meanwhile.
			logs := mf.log.String()
			logPath := filepath.Join(t.TempDir(), "mailfront.log")
			if err := os.WriteFile(logPath, []byte(logs), 0o644); err != nil {
				t.Fatal(err)
			}

			// What the filter matched: address, time and line of each.
			r := runClient(t, nil, nil, regexBin, "-o", "<time>|<ip>|<msg>", logPath, fail2banFilter)
			if r.code != 0 {
				t.Fatalf("fail2ban-regex: %s", r)
			}
			var gotIPs, gotLines []string
			for _, l := range strings.Split(strings.TrimSpace(string(r.stdout)), "\n") {
				if l == "" {
					continue
				}
				parts := strings.SplitN(l, "|", 3)
				if len(parts) != 3 {
					t.Fatalf("fail2ban-regex -o: unexpected line %q", l)
				}
				gotIPs = append(gotIPs, parts[1])
				gotLines = append(gotLines, parts[2])
				checkTime(t, format, parts[0], parts[2])
			}
			slices.Sort(gotIPs)
			t.Logf("fail2ban-regex matched %d lines, addresses %v", len(gotLines), gotIPs)
			if !slices.Equal(gotIPs, want.ips) {
				t.Errorf("banned addresses: got %v, want %v", gotIPs, want.ips)
			}
			if !slices.Equal(gotLines, want.lines) {
				t.Errorf("matched lines:\ngot  %q\nwant %q", gotLines, want.lines)
			}

			// Every line's time is read by the filter's datepattern, none
			// is left to "now".
			r = runClient(t, nil, nil, regexBin, "--print-no-missed", logPath, fail2banFilter)
			checkDateHits(t, r, countLines(logs))

			// The same lines as the journal hands them to fail2ban: prefixed
			// with "host mailfront[pid]: ", the time coming from the journal.
			journal := filepath.Join(t.TempDir(), "journal.log")
			var jb strings.Builder
			for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
				fmt.Fprintf(&jb, "mailhost mailfront[%d]: %s\n", mf.pid, l)
			}
			if err := os.WriteFile(journal, []byte(jb.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			r = runClient(t, nil, nil, regexBin, "-o", "<ip>", journal, fail2banFilter)
			jIPs := strings.Fields(string(r.stdout))
			slices.Sort(jIPs)
			if r.code != 0 || !slices.Equal(jIPs, want.ips) {
				t.Errorf("journal-shaped lines: got %v (%s), want %v", jIPs, r, want.ips)
			}
			if t.Failed() {
				r = runClient(t, nil, nil, regexBin, "-v", "--print-all-matched", logPath, fail2banFilter)
				t.Logf("fail2ban-regex -v:\n%s", r)
			}
		})
	}
}

// fail2banWant is what the filter should find in a scenario's log.
type fail2banWant struct {
	ips   []string // sorted, one per failure
	lines []string // the "login failed" lines, in log order
}

// fail2banScenario starts mailfront (log format as given) in front of dv
// with an IPv6 listener (when ::1 exists) and a listener whose backend is
// a closed port, and makes it log everything fail2ban must tell apart.
func fail2banScenario(t *testing.T, dv *dovecot, format string) (*customFront, fail2banWant) {
	t.Helper()
	closed := freePorts(t, 1)[0]
	spec := frontSpec{format: format, extra: []extraListener{
		{name: "it-down", protocol: "imap", tls: "implicit", backend: net.JoinHostPort("127.0.0.1", strconv.Itoa(closed))},
	}}
	v6 := loopback6()
	if v6 {
		spec.extra = append(spec.extra, extraListener{name: "it-imaps6", protocol: "imap", tls: "implicit",
			address: net.JoinHostPort("::1", strconv.Itoa(freePort6(t)))})
	}
	// Three IPv4 failures. With the guard, small delays (the timing is
	// TestGuard's business) and a block at the third, so the log has a
	// "network blocked" line too.
	const v4Failures = 3
	guard := hasGuard(t)
	if guard {
		spec.yaml = fmt.Sprintf("guard:\n  base_delay: 50ms\n  max_delay: 100ms\n  block: {failures: %d, window: 10m, duration: 15m}\n", v4Failures)
	}
	mf := startFront(t, dv, spec)
	e := &env{dv: dv, mf: mf.front}

	// Before any failure from 127.0.0.1 (a blocked network gets nothing
	// more): a login that succeeds, one refused before TLS, one whose
	// backend is down, a right POP3 password for a mailbox another POP3
	// session holds (Dovecot's -ERR [IN-USE], which mailfront logs as
	// "mailbox busy" with outcome=mailbox-busy code=IN-USE), and the IPv6
	// failure.
	c := e.dialIMAP(t, false, nil)
	if err := c.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatalf("right password: %v", err)
	}
	c.Logout().Wait()
	// Dovecot waits 10 s for the lock before IN-USE: meanwhile, the rest.
	holder := e.pop3Client(t, false)
	if err := holder.Login(testUser, testPassword); err != nil {
		t.Fatalf("POP3S login holding the mailbox: %v", err)
	}
	second := e.pop3Client(t, false)
	inUseDone := make(chan string, 1)
	go func() {
		defer holder.Quit()
		defer second.Close()
		if line, ok := pop3client.IsERR(second.Login(testUser, testPassword)); !ok || !strings.HasPrefix(line, "-ERR [IN-USE]") {
			inUseDone <- fmt.Sprintf("second POP3 session with the right password: got %q, want -ERR [IN-USE]", line)
			return
		}
		inUseDone <- ""
	}()
	w := dialWire(t, mf.imap)
	w.do(step{"", "* OK"})
	w.do(step{"a LOGIN " + testUser + " " + imapQuote(wrongPassword), "a NO"})
	w.c.Close()
	rc, _, err := dialTLS(mf.front, "", mf.extra["it-down"], clientTimeout)
	if err != nil {
		t.Fatalf("dial it-down: %v", err)
	}
	if got, err := rc.imapLogin(testUser, testPassword); err != nil || !strings.HasPrefix(got, "a1 NO") {
		t.Errorf("login with the backend down: got %q (%v), want a1 NO", got, err)
	}
	rc.close()
	ips := []string{}
	if v6 {
		if got := wrongIMAPS(mf, mf.extra["it-imaps6"], testUser, wrongPassword); got != "" {
			t.Error(got)
		}
		ips = append(ips, "::1")
	}
	for _, msg := range []string{"login", "plaintext login refused", "backend unavailable"} {
		mf.log.wait(t, 0, msgRE(format, msg), mf.exited)
	}
	inUse := regexp.MustCompile(` outcome=mailbox-busy .*code=IN-USE( |$)|"outcome":"mailbox-busy",.*"code":"IN-USE"`)

	// The IPv4 failures, together: IMAPS, POP3 with STLS, and IMAPS with
	// a hostile user name; distinct passwords, as the guard counts a
	// repeated one once.
	var wg sync.WaitGroup
	errs := make([]string, v4Failures)
	wg.Add(v4Failures)
	go func() {
		defer wg.Done()
		errs[0] = wrongIMAPS(mf, mf.imaps, testUser, wrongPassword+" 1")
	}()
	go func() {
		defer wg.Done()
		errs[1] = wrongPOP3STLS(mf, wrongPassword+" 2")
	}()
	go func() {
		defer wg.Done()
		errs[2] = wrongIMAPS(mf, mf.imaps, hostileUser(format), wrongPassword+" 3")
	}()
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Error(e)
		}
	}
	for range v4Failures {
		ips = append(ips, "127.0.0.1")
	}
	if got := <-inUseDone; got != "" {
		t.Error(got)
	}
	mf.log.wait(t, 0, inUse, mf.exited)
	failed := msgRE(format, "login failed")
	deadline := time.Now().Add(logTimeout)
	for len(lines(mf.log.String(), failed)) < len(ips) && time.Now().Before(deadline) {
		time.Sleep(pollEvery)
	}
	if guard {
		mf.log.wait(t, 0, msgRE(format, "network blocked"), mf.exited)
	}
	want := fail2banWant{ips: ips, lines: lines(mf.log.String(), failed)}
	busy := lines(mf.log.String(), msgRE(format, "mailbox busy"))
	slices.Sort(want.ips)
	if len(want.lines) != len(ips) || len(busy) != 1 || !inUse.MatchString(busy[0]) {
		t.Fatalf("mailfront logged %d login failed lines for wrong passwords and mailbox busy lines %q, want %d and one with outcome=mailbox-busy code=IN-USE", len(want.lines), busy, len(ips))
	}
	return mf, want
}

// msgRE matches the lines with message msg, in either log format.
func msgRE(format, msg string) *regexp.Regexp {
	q := regexp.QuoteMeta(msg)
	if format == "json" {
		return regexp.MustCompile(`^\{"time":"[^"]*","level":"\w+","msg":"` + q + `"`)
	}
	if strings.ContainsAny(msg, " \"=") {
		return regexp.MustCompile(`^time=\S+ level=\w+ msg="` + q + `" `)
	}
	return regexp.MustCompile(`^time=\S+ level=\w+ msg=` + q + ` `)
}

// wrongIMAPS logs in over implicit TLS at addr with a wrong password and
// returns "" when the answer was NO [AUTHENTICATIONFAILED].
func wrongIMAPS(mf *customFront, addr, user, pass string) string {
	rc, _, err := dialTLS(mf.front, "", addr, clientTimeout)
	if err != nil {
		return fmt.Sprintf("IMAPS %s: %v", addr, err)
	}
	defer rc.close()
	got, err := rc.imapLogin(user, pass)
	if err != nil || !strings.HasPrefix(got, "a1 NO [AUTHENTICATIONFAILED]") {
		return fmt.Sprintf("IMAPS %s as %q: got %q (%v), want a1 NO [AUTHENTICATIONFAILED]", addr, user, got, err)
	}
	return ""
}

// wrongPOP3STLS logs in over POP3 with STLS with a wrong password and
// returns "" when the answer was -ERR [AUTH].
func wrongPOP3STLS(mf *customFront, pass string) string {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	c, err := pop3client.Dial(ctx, mf.pop3)
	if err == nil {
		err = c.STLS(mf.tlsConfig())
	}
	if err != nil {
		return "POP3 STLS: " + err.Error()
	}
	defer c.Close()
	if line, ok := pop3client.IsERR(c.Login(testUser, pass)); !ok || !strings.HasPrefix(line, "-ERR [AUTH]") {
		return fmt.Sprintf("POP3 STLS: got %q, want -ERR [AUTH]", line)
	}
	return ""
}

// checkTime checks fail2ban's time for a matched line is the line's own
// time= / "time": value (to the second).
func checkTime(t *testing.T, format, got, line string) {
	t.Helper()
	re := regexp.MustCompile(`^time=(\S+)`)
	if format == "json" {
		re = regexp.MustCompile(`^\{"time":"([^"]+)"`)
	}
	m := re.FindStringSubmatch(line)
	if m == nil {
		t.Errorf("no time in %q", line)
		return
	}
	want, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Errorf("time in %q: %v", line, err)
		return
	}
	secs, err := strconv.ParseFloat(got, 64)
	if err != nil || math.Abs(secs-float64(want.UnixNano())/1e9) >= 1 {
		t.Errorf("fail2ban's time for %q: got %s, want %d", line, got, want.Unix())
	}
}

// checkDateHits checks fail2ban-regex's summary: every line of the log
// hit one of the filter's date patterns.
func checkDateHits(t *testing.T, r result, n int) {
	t.Helper()
	out := string(r.stdout)
	sec := out[strings.Index(out, "Date template hits:")+1:]
	hits := 0
	for _, m := range regexp.MustCompile(`\|  \[(\d+)\] `).FindAllStringSubmatch(sec, -1) {
		k, _ := strconv.Atoi(m[1])
		hits += k
	}
	if r.code != 0 || hits != n {
		t.Errorf("date template hits: got %d, want %d (every line)\n%s", hits, n, r)
	}
}

func countLines(s string) int {
	return len(strings.Split(strings.TrimSpace(s), "\n"))
}

// checkJailLoads checks the example jail and the filter load in a copy of
// this machine's fail2ban configuration: fail2ban-client -d prints the
// commands it would send the server, or the error.
func checkJailLoads(t *testing.T) {
	t.Helper()
	client := tool(t, "fail2ban-client", "fail2ban")
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "/etc/fail2ban/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy /etc/fail2ban: %v\n%s", err, out)
	}
	for src, dst := range map[string]string{fail2banFilter: "filter.d/mailfront.conf", fail2banJail: "jail.d/mailfront.local"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := runClient(t, nil, nil, client, "-c", dir, "-d")
	out := string(r.stdout)
	for _, want := range []string{
		"['add', 'mailfront', 'systemd']",
		"['set', 'mailfront', 'addjournalmatch', '_SYSTEMD_UNIT=mailfront.service']",
		"'addfailregex'",
	} {
		if r.code != 0 || !strings.Contains(out, want) {
			t.Fatalf("fail2ban-client -d with the example jail: want %s in its output\n%s", want, r)
		}
	}
}
