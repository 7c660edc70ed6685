//go:build integration

package integration

// The legacy servers (Courier, Cyrus, GNU Mailutils, popa3d, solid-pop3d)
// cannot be installed beside the Dovecot the rest of the suite uses: each
// conflicts with dovecot-imapd/dovecot-pop3d as an imap-server or a
// pop3-server. Each runs instead in a small Debian root of its own, made once with
// debootstrap --variant=minbase from the archive apt uses and cached
// between runs, started with chroot on loopback ports (the root shares
// the machine's network), and stopped by process id.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rootsDir holds the cached roots: $MAILFRONT_IT_ROOTS, or
// /var/cache/mailfront-integration/roots. A root is rebuilt when its
// package list, the Debian release or the machine's apt sources change,
// since its name carries a hash of them; delete the directory to rebuild
// them all.
func rootsDir() string {
	if d := os.Getenv("MAILFRONT_IT_ROOTS"); d != "" {
		return d
	}
	return "/var/cache/mailfront-integration/roots"
}

// rootTimeout bounds building one root (about 45 s on CI's machine, more
// for Cyrus's dependencies).
const rootTimeout = 10 * time.Minute

// rootsMu serialises building roots: two debootstraps at once on a
// two-core machine only make both slower.
var rootsMu sync.Mutex

// legacyRoot returns a Debian root with packages installed, made with
// debootstrap --variant=minbase the first time and cached (see rootsDir),
// the packages from the machine's own apt sources (security updates
// included).
// The root has /usr/sbin/policy-rc.d refusing every service start, so no
// package started a daemon on the machine's ports while it was installed.
// It must be run as root (CI and integration/run are).
func legacyRoot(t *testing.T, name string, packages ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("the %s tests run %s in a chroot, which needs root (run integration/run as root)", name, name)
	}
	debootstrap := tool(t, "debootstrap", "debootstrap")
	mirror, suite := debianArchive(t)
	sources := aptSources(t)
	pkgs := append([]string(nil), packages...)
	sort.Strings(pkgs)
	h := sha256.New()
	fmt.Fprintf(h, "%s %s %s\n", mirror, suite, strings.Join(pkgs, " "))
	for _, f := range sources {
		fmt.Fprintf(h, "%s\n%s\n", f.path, f.content)
	}
	sum := h.Sum(nil)
	root := filepath.Join(rootsDir(), name+"-"+suite+"-"+hex.EncodeToString(sum[:6]))

	rootsMu.Lock()
	defer rootsMu.Unlock()
	done := filepath.Join(root, ".mailfront-integration-ready")
	if _, err := os.Stat(done); err == nil {
		return root
	}
	// A half-built root is removed, never one with something mounted in
	// it: removing a bind mount's contents would reach outside the root.
	if mounts, err := os.ReadFile("/proc/mounts"); err == nil && strings.Contains(string(mounts), " "+root+"/") {
		t.Fatalf("something is still mounted under %s (see /proc/mounts): unmount it before the root is rebuilt", root)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("building the %s root in %s (debootstrap %s %s from %s; cached for later runs)", name, root, suite, strings.Join(pkgs, " "), mirror)
	start := time.Now()
	runRootStep(t, name, "", debootstrap, "--variant=minbase", suite, root, mirror)
	// No package may start its daemon: it would take the machine's
	// standard mail ports, outside any test.
	writeFile(t, filepath.Join(root, "usr/sbin/policy-rc.d"), []byte("#!/bin/sh\nexit 101\n"), 0o755)
	// The machine's own apt sources, security updates included: the
	// servers are the versions a Debian operator runs today.
	if err := os.Remove(filepath.Join(root, "etc/apt/sources.list")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, f := range sources {
		writeFile(t, inRoot(root, f.path), f.content, 0o644)
	}
	runRootStep(t, name, root, "apt-get", "update", "-q")
	runRootStep(t, name, root, append([]string{"apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "Dpkg::Use-Pty=0"}, pkgs...)...)
	runRootStep(t, name, root, "apt-get", "clean")
	writeFile(t, done, []byte(strings.Join(pkgs, "\n")+"\n"), 0o644)
	t.Logf("built the %s root in %v", name, time.Since(start).Round(time.Second))
	return root
}

// runRootStep runs one step of building a root, in the root when root is
// set (chroot), and fails the test with its output when it fails.
func runRootStep(t *testing.T, name, root string, args ...string) {
	t.Helper()
	if root != "" {
		args = append([]string{"chroot", root}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	cmd.WaitDelay = 5 * time.Second
	timer := time.AfterFunc(rootTimeout, func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("building the %s root: %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 6000))
	}
}

// tail is the end of a long output, for failure messages.
func tail(b []byte, most int) string {
	if len(b) <= most {
		return string(b)
	}
	return "...\n" + string(b[len(b)-most:])
}

// debianArchive is the first Debian archive apt uses here and the
// machine's release (bookworm): the legacy roots come from the same
// place as the rest of the suite's packages.
func debianArchive(t *testing.T) (mirror, suite string) {
	t.Helper()
	suite = osRelease(t)["VERSION_CODENAME"]
	if suite == "" {
		t.Fatal("/etc/os-release names no VERSION_CODENAME: the legacy roots need a Debian release")
	}
	mirror = "http://deb.debian.org/debian"
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	files = append(files, "/etc/apt/sources.list")
	deb822 := regexp.MustCompile(`(?m)^URIs:\s*(\S+)`)
	oneLine := regexp.MustCompile(`(?m)^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+` + regexp.QuoteMeta(suite) + `\s`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, re := range []*regexp.Regexp{deb822, oneLine} {
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				if !strings.Contains(m[1], "security") {
					return m[1], suite
				}
			}
		}
	}
	return mirror, suite
}

// aptSource is one of the machine's apt source files.
type aptSource struct {
	path    string // /etc/apt/sources.list or /etc/apt/sources.list.d/NAME
	content []byte
}

// aptSources are the machine's apt source files, which the roots use too;
// a root is made again when they change.
func aptSources(t *testing.T) []aptSource {
	t.Helper()
	paths, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	paths = append([]string{"/etc/apt/sources.list"}, paths...)
	var out []aptSource
	for _, p := range paths {
		if !strings.HasSuffix(p, ".list") && !strings.HasSuffix(p, ".sources") {
			continue
		}
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatalf("read the machine's apt sources: %v", err)
		}
		out = append(out, aptSource{path: p, content: b})
	}
	if len(out) == 0 {
		t.Fatal("no apt sources in /etc/apt: the legacy roots install their packages from the machine's own")
	}
	return out
}

// osRelease is /etc/os-release as a map.
func osRelease(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), "=")
		if ok {
			m[k] = strings.Trim(v, `"`)
		}
	}
	return m
}

// inRoot is a path inside root, for files a test writes or reads there.
func inRoot(root, path string) string {
	return filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(path, "/")))
}

// startInRoot runs args (a path inside the root first) with chroot root,
// in a process group of its own, its output to the file out (a path
// outside the root), and stops it at the end of the test (stopGroup: its
// pid and then its group), then calls after. It returns the pid and a
// channel closed when the process ends. A daemon that forks into the
// background leaves the group's leader gone at once: keep such servers in
// the foreground (their -f/--foreground flag) so stopping by pid works.
func startInRoot(t *testing.T, root, name, out string, after func(*exec.Cmd), args ...string) (int, chan struct{}) {
	t.Helper()
	exited := make(chan struct{})
	pid := startGroup(t, name, out, exited, func(cmd *exec.Cmd) {
		if after != nil {
			after(cmd)
		}
	}, append([]string{"chroot", root}, args...)...)
	return pid, exited
}

// runInRoot runs one command in root to its end (a setup step: saslpasswd2,
// userdb, makeuserdb...), with stdin, and fails the test when it fails.
func runInRoot(t *testing.T, root string, stdin []byte, args ...string) string {
	t.Helper()
	r := runClient(t, stdin, []string{"LC_ALL=C"}, "chroot", append([]string{root}, args...)...)
	if r.code != 0 {
		t.Fatalf("chroot %s %s: %s", root, strings.Join(args, " "), r)
	}
	return string(r.stdout)
}

// inetd serves a per-connection server the way inetd does: it listens on
// a loopback port and runs args in root for every connection, with the
// connection as its standard input and output; the server's standard
// error goes to the file errOut. It stops accepting at the end of the
// test and waits up to 10 s for the servers still running, then kills
// them (each runs in a process group of its own).
func inetd(t *testing.T, root, name, errOut string, args ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errFile, err := os.Create(errOut)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		pids []int
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f, err := c.(*net.TCPConn).File()
			c.Close()
			if err != nil {
				continue
			}
			cmd := exec.Command("chroot", append([]string{root}, args...)...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, errFile
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				fmt.Fprintf(errFile, "inetd: start %s: %v\n", name, err)
				f.Close()
				continue
			}
			f.Close()
			mu.Lock()
			pids = append(pids, cmd.Process.Pid)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd.Wait()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		all := make(chan struct{})
		go func() {
			wg.Wait()
			close(all)
		}()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: servers still running 10 s after the test; killing them", name)
			mu.Lock()
			for _, pid := range pids {
				syscall.Kill(-pid, syscall.SIGKILL)
			}
			mu.Unlock()
			<-all
		}
		errFile.Close()
	})
	return ln.Addr().String()
}

// syslogIn catches what programs in root send to syslog: it listens on
// the root's /dev/log (a unix datagram socket, as syslog(3) expects) and
// appends every message, one per line, to the file out, which it returns
// as a logFile. It removes the socket at the end of the test. Courier,
// Cyrus and Mailutils log logins only to syslog.
func syslogIn(t *testing.T, root, out string) logFile {
	t.Helper()
	sock := inRoot(root, "/dev/log")
	os.Remove(sock)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatalf("syslog for %s: %v", root, err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			f.Write(append(bytes.TrimRight(buf[:n], "\x00\n"), '\n'))
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
		f.Close()
		os.Remove(sock)
	})
	return logFile{out}
}
