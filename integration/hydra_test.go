//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// hydraWindow is how long each hydra run may guess before it is
	// stopped; all four runs go at once.
	hydraWindow = 20 * time.Second
	// hydraWrong is how many wrong passwords come before the right one
	// in the word list; hydraTail how many wrong ones follow it.
	hydraWrong, hydraTail = 190, 10
	// hydraTasks is hydra's -t: connections in parallel per target.
	hydraTasks = 16
	// hydraMinRatio is how many times fewer guesses per minute the
	// default guard must let through than no guard at all. Measured on
	// 2 cores: see TestHydra's table, and README.md.
	hydraMinRatio = 10
	// legitBound bounds a legitimate login during the attacks: well
	// under the default guard's max_delay (15 s), the wait of a
	// penalised network.
	legitBound = 8 * time.Second
)

// hydraRun is one hydra attack on one mailfront and what came of it.
type hydraRun struct {
	name     string // "imap, no guard"
	protocol string // imap or pop3
	guard    bool
	mf       *customFront
	out      bytes.Buffer // hydra's output
	elapsed  time.Duration
	// Counted after the run, from mailfront's log (the reliable counter)
	// and from hydra's own output.
	failures, refused, blocked int
	attempts                   int          // hydra's [ATTEMPT] lines
	found                      bool         // hydra printed the right password
	quiet                      legitLogin   // a legitimate login before the attack
	legit                      []legitLogin // and during it

	// addr is where hydra and the legitimate client connect: the
	// listener (the implicit TLS one of protocol) when empty, or a
	// balancer in front of it.
	addr string
}

// legitLogin is one login by a legitimate client during the attack.
type legitLogin struct {
	took time.Duration
	res  result
}

// perMinute is the rate of refused passwords during the run.
func (r *hydraRun) perMinute() float64 {
	return float64(r.failures) / r.elapsed.Minutes()
}

// TestHydra points THC hydra (Debian's hydra 9.4: -t 16 connections in
// parallel, a word list of 200 wrong passwords with the right one near the
// end) at mailfront's IMAPS and POP3S listeners, once with the guard off
// and once with the default guard, all four at once for hydraWindow, and
// counts the guesses that reached the backend (mailfront's "login failed"
// lines). The guard must cut the rate by hydraMinRatio or more, hydra must
// not find the password through it, and a legitimate client (curl with
// the right password, from 127.0.0.2: another network, not trusted) must
// keep logging in quickly through the guarded listeners during the attack.
// Dovecot's own per-IP auth penalty is off (startDovecotWith), as it
// would slow everybody behind mailfront's single address and hide what
// the guard does; its 2 s auth_failure_delay stays.
func TestHydra(t *testing.T) {
	hydra := tool(t, "hydra", "hydra")
	curl := tool(t, "curl", "curl")
	needGuard(t)
	dv := startDovecotWith(t, dovecotOptions{NoAuthPenalty: true})
	dir := t.TempDir()
	words, secrets := hydraWords(t, dir)

	var runs []*hydraRun
	for _, p := range []string{"imap", "pop3"} {
		for _, guard := range []bool{false, true} {
			r := &hydraRun{protocol: p, guard: guard, name: p + ", no guard"}
			spec := frontSpec{secrets: secrets, yaml: guardOff}
			if guard {
				r.name = p + ", default guard"
				spec.yaml = "" // the defaults: on, nothing trusted
			}
			r.mf = startFront(t, dv, spec)
			runs = append(runs, r)
		}
	}

	// The legitimate client's login time on a quiet machine, for the table.
	for _, r := range runs {
		if r.guard {
			r.legitAt(curl, time.Now(), 0)
		}
	}

	var wg sync.WaitGroup
	start := time.Now()
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.attack(t, hydra, words, dir)
		}()
		if r.guard {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.legitDuring(curl, start)
			}()
		}
	}
	wg.Wait()

	for _, r := range runs {
		r.count(t)
	}
	logHydraTable(t, runs)
	for i := 0; i+1 < len(runs); i += 2 {
		off, on := runs[i], runs[i+1]
		if off.failures < 50 {
			t.Errorf("%s: only %d guesses reached the backend in %v; the attack did not run (hydra output below)", off.name, off.failures, off.elapsed)
		}
		if on.found {
			t.Errorf("%s: hydra found the password through the guard", on.name)
		}
		if on.perMinute()*hydraMinRatio > off.perMinute() {
			t.Errorf("%s: %.0f guesses/min, want at most 1/%d of %.0f (no guard)", on.name, on.perMinute(), hydraMinRatio, off.perMinute())
		}
		if on.quiet.res.code != 0 {
			t.Errorf("%s: legitimate login before the attack: got %s, want exit 0", on.name, on.quiet.res)
		}
		if len(on.legit) == 0 {
			t.Errorf("%s: no legitimate login was tried during the attack", on.name)
		}
		// Not queued behind the attacker's penalty (which grows to the
		// guard's max_delay, 15 s) nor refused; the machine is busy with
		// four attacks, so a login takes longer than when it is quiet.
		for _, l := range on.legit {
			if l.res.code != 0 || l.took > legitBound {
				t.Errorf("%s: legitimate login from 127.0.0.2 during the attack: took %v, got %s, want exit 0 within %v", on.name, l.took, l.res, legitBound)
			}
		}
	}
	if t.Failed() {
		for _, r := range runs {
			t.Logf("hydra output, %s:\n%s", r.name, clip(r.out.Bytes()))
		}
	}
	// HYDRA_OUTPUT=dir keeps hydra's whole output and mailfront's log, one
	// file each per run.
	if d := os.Getenv("HYDRA_OUTPUT"); d != "" {
		for _, r := range runs {
			name := strings.NewReplacer(", ", "-", " ", "-").Replace(r.name) + ".txt"
			if err := os.WriteFile(filepath.Join(d, name), r.out.Bytes(), 0o644); err != nil {
				t.Error(err)
			}
			if err := os.WriteFile(filepath.Join(d, "mailfront-"+name), []byte(r.mf.log.String()), 0o644); err != nil {
				t.Error(err)
			}
		}
	}
}

// hydraWords writes hydra's word list in dir: hydraWrong wrong passwords,
// the right one, hydraTail more wrong ones. It returns its path and the
// wrong passwords, which must never appear in mailfront's log either.
func hydraWords(t *testing.T, dir string) (path string, secrets []string) {
	t.Helper()
	path = filepath.Join(dir, "words.txt")
	var wb strings.Builder
	for i := range hydraWrong + hydraTail {
		if i == hydraWrong {
			wb.WriteString(testPassword + "\n")
		}
		w := fmt.Sprintf("hydra-guess-%03d", i)
		secrets = append(secrets, w)
		wb.WriteString(w + "\n")
	}
	if err := os.WriteFile(path, []byte(wb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, secrets
}

// target is where r's clients connect.
func (r *hydraRun) target() string {
	switch {
	case r.addr != "":
		return r.addr
	case r.protocol == "pop3":
		return r.mf.pop3s
	}
	return r.mf.imaps
}

// attack runs hydra against r's implicit TLS listener until it gives up,
// finds the password, or hydraWindow is over (then its whole process
// group is stopped: hydra forks a child per task).
func (r *hydraRun) attack(t *testing.T, hydra, words, dir string) {
	url := r.protocol + "s://" + r.target()
	// -I: ignore a restore file; -f: stop at the first password found;
	// -V: one [ATTEMPT] line per guess; -w: wait for an answer that long.
	cmd := exec.Command(hydra, "-I", "-f", "-V", "-t", fmt.Sprint(hydraTasks), "-w", "30", "-l", testUser, "-P", words, url)
	cmd.Dir = dir // hydra.restore, if it writes one
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Errorf("start hydra: %v", err)
		return
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(hydraWindow):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	r.elapsed = min(time.Since(start), hydraWindow)
}

// legitDuring logs in with curl and the right password from 127.0.0.2 a
// few times while the attack runs.
func (r *hydraRun) legitDuring(curl string, start time.Time) {
	for _, at := range []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second} {
		r.legitAt(curl, start, at)
	}
}

// legitAt logs in with curl and the right password from 127.0.0.2 at
// start+at (at once if that is past); at 0 is the login before the attack.
// The URL names 127.0.0.1, which the test certificate covers.
func (r *hydraRun) legitAt(curl string, start time.Time, at time.Duration) {
	url := "imaps://" + r.target() + "/INBOX?ALL"
	if r.protocol == "pop3" {
		url = "pop3s://" + r.target() + "/"
	}
	time.Sleep(time.Until(start.Add(at)))
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, "-sS", "--interface", "127.0.0.2", "--cacert", r.mf.caFile,
		"-u", testUser+":"+testPassword, url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	l := legitLogin{took: time.Since(began), res: result{stdout: stdout.Bytes(), stderr: stderr.Bytes()}}
	if err != nil {
		l.res.code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			l.res.code = ee.ExitCode()
		}
	}
	if at == 0 {
		r.quiet = l
		return
	}
	r.legit = append(r.legit, l)
}

// count reads the run's results from mailfront's log and hydra's output.
func (r *hydraRun) count(t *testing.T) {
	t.Helper()
	logs := r.mf.log.String()
	r.failures = len(lines(logs, regexp.MustCompile(`msg="login failed" `)))
	r.refused = len(lines(logs, regexp.MustCompile(`msg="session end" .*outcome=refused( |$)`)))
	r.blocked = len(lines(logs, regexp.MustCompile(`msg="network blocked" `)))
	out := r.out.String()
	r.attempts = strings.Count(out, "[ATTEMPT] ")
	r.found = strings.Contains(out, "password: "+testPassword)
}

// logHydraTable prints the measurements, for README.md.
func logHydraTable(t *testing.T, runs []*hydraRun) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "hydra -t %d against mailfront for up to %v each, %d at once (failures: mailfront's login failed lines):\n", hydraTasks, hydraWindow, len(runs))
	fmt.Fprintf(&b, "| %-20s | %8s | %8s | %13s | %13s | %8s | %7s | %5s | %s\n", "run", "elapsed", "failures", "guesses/min", "hydra tries", "refused", "blocked", "found", "legit logins (127.0.0.2)")
	for _, r := range runs {
		var during []string
		for _, l := range r.legit {
			during = append(during, fmt.Sprintf("%v exit %d", l.took.Round(time.Millisecond), l.res.code))
		}
		legit := ""
		if r.guard {
			legit = fmt.Sprintf("before: %v exit %d; during: %s", r.quiet.took.Round(time.Millisecond), r.quiet.res.code, strings.Join(during, ", "))
		}
		fmt.Fprintf(&b, "| %-20s | %8v | %8d | %13.1f | %13d | %8d | %7d | %5v | %s\n", r.name, r.elapsed.Round(100*time.Millisecond),
			r.failures, r.perMinute(), r.attempts, r.refused, r.blocked, r.found, legit)
	}
	for i := 0; i+1 < len(runs); i += 2 {
		off, on := runs[i], runs[i+1]
		ratio := "inf"
		if on.failures > 0 {
			ratio = fmt.Sprintf("%.0fx", off.perMinute()/on.perMinute())
		}
		fmt.Fprintf(&b, "%s: the default guard lets through %s fewer guesses per minute\n", off.protocol, ratio)
	}
	t.Log(b.String())
}
