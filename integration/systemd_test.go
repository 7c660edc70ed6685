//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/testpki"
)

// systemdUnit is the unit operators install (the package ships it as
// /lib/systemd/system/mailfront.service).
var systemdUnit = repoPath("deploy/mailfront.service")

// maxExposure is the highest "systemd-analyze security" exposure the unit
// may have, in tenths as its --threshold takes it: 2.0, the top of "OK".
const maxExposure = 20

// TestSystemdUnit checks deploy/mailfront.service with Debian's
// systemd-analyze, offline (no running systemd needed): "verify" finds no
// problem in it, in a temporary root holding the binary under test where
// the unit runs it and the distribution's own units; "security
// --offline=yes" rates its sandbox 2.0 or better; and the command line of
// its ExecStartPre, pointed at a test configuration, is one the binary
// accepts.
func TestSystemdUnit(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	svc := parseUnit(t, string(unit))
	for key, want := range map[string]string{"Type": "notify", "NotifyAccess": "main", "User": "mailfront", "StateDirectory": "mailfront"} {
		if got := svc[key]; len(got) != 1 || got[0] != want {
			t.Errorf("[Service] %s: got %q, want %s", key, got, want)
		}
	}
	if got := svc["PrivateUsers"]; len(got) > 0 && got[len(got)-1] != "no" {
		t.Errorf("[Service] PrivateUsers=%s: in a user namespace of its own, CAP_NET_BIND_SERVICE no longer binds ports below 1024", got[len(got)-1])
	}

	root := unitRoot(t, svc, string(unit))
	t.Run("verify", func(t *testing.T) {
		r := runClient(t, nil, nil, analyze, "verify", "--root="+root, "mailfront.service")
		if r.code != 0 || strings.Contains(string(r.stdout)+string(r.stderr), "mailfront") {
			t.Errorf("systemd-analyze verify --root=%s mailfront.service: %s", root, r)
		}
	})
	t.Run("security", func(t *testing.T) {
		args := []string{"security", "--offline=yes", "--no-pager", "--root=" + root}
		r := runClient(t, nil, nil, analyze, append(args, "mailfront.service")...)
		m := regexp.MustCompile(`Overall exposure level for mailfront\.service: (\d+\.\d)`).FindSubmatch(r.stdout)
		if r.code != 0 || m == nil {
			t.Fatalf("systemd-analyze security: no exposure level\n%s", r)
		}
		exposure, _ := strconv.ParseFloat(string(m[1]), 64)
		var open []string
		for _, l := range strings.Split(string(r.stdout), "\n") {
			if strings.HasPrefix(l, "✗") {
				open = append(open, strings.Join(strings.Fields(l), " "))
			}
		}
		t.Logf("exposure %.1f; not restricted:\n%s", exposure, strings.Join(open, "\n"))
		if exposure*10 > maxExposure {
			t.Errorf("exposure %.1f, want %.1f or better\n%s", exposure, float64(maxExposure)/10, r.stdout)
		}
		// The tool's own verdict agrees (it exits non-zero above the threshold).
		args = append(args, "--threshold="+strconv.Itoa(maxExposure), "mailfront.service")
		if r := runClient(t, nil, nil, analyze, args...); r.code != 0 {
			t.Errorf("systemd-analyze security --threshold=%d: %s", maxExposure, r)
		}
	})
	t.Run("ExecStartPre", func(t *testing.T) {
		pre := svc["ExecStartPre"]
		if len(pre) != 1 {
			t.Fatalf("ExecStartPre: got %q, want the one validate command", pre)
		}
		argv := strings.Fields(pre[0])
		conf := minimalConfig(t, t.TempDir())
		for i, a := range argv {
			if a == "/etc/mailfront/mailfront.yaml" {
				argv[i] = conf
			}
		}
		if argv[0] != "/usr/bin/mailfront" || !strings.Contains(pre[0], "/etc/mailfront/mailfront.yaml") {
			t.Fatalf("ExecStartPre=%s: want /usr/bin/mailfront ... /etc/mailfront/mailfront.yaml", pre[0])
		}
		if r := runClient(t, nil, nil, mailfrontBin, argv[1:]...); r.code != 0 {
			t.Errorf("mailfront %s: %s", strings.Join(argv[1:], " "), r)
		}
	})
}

// parseUnit returns a unit file's [Service] settings, each key's values in
// order, with backslash-continued lines joined.
func parseUnit(t *testing.T, unit string) map[string][]string {
	t.Helper()
	svc := map[string][]string{}
	section := ""
	unit = strings.ReplaceAll(unit, "\\\n", " ")
	for _, l := range strings.Split(unit, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[':
			section = l
		case section == "[Service]":
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("unit line %q: want Key=value", l)
			}
			svc[strings.TrimSpace(k)] = append(svc[strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return svc
}

// unitRoot builds a root directory for systemd-analyze --root: the unit in
// etc/systemd/system, a copy of this machine's units (verify loads the
// targets the unit depends on), and every program its Exec lines run:
// /usr/bin/mailfront is the binary under test, others (/bin/kill) are
// copied from this machine.
func unitRoot(t *testing.T, svc map[string][]string, unit string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc/systemd/system", "usr/bin", "usr/sbin", "usr/lib"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Debian 12 is merged-/usr: /bin, /sbin and /lib are links into /usr.
	for _, d := range []string{"bin", "sbin", "lib"} {
		if err := os.Symlink("usr/"+d, filepath.Join(root, d)); err != nil {
			t.Fatal(err)
		}
	}
	units, err := filepath.EvalSymlinks("/lib/systemd/system")
	if err != nil {
		t.Fatalf("this machine's systemd units: %v", err)
	}
	copyTree(t, units, filepath.Join(root, "usr/lib/systemd/system"))
	writeFile(t, filepath.Join(root, "etc/systemd/system/mailfront.service"), []byte(unit), 0o644)
	for _, key := range []string{"ExecStartPre", "ExecStart", "ExecReload", "ExecStop", "ExecStopPost"} {
		for _, line := range svc[key] {
			prog := strings.TrimLeft(strings.Fields(line)[0], "-@:+!")
			if !filepath.IsAbs(prog) {
				t.Errorf("%s=%s: want an absolute path", key, line)
				continue
			}
			dst := filepath.Join(root, prog)
			src := prog
			if prog == "/usr/bin/mailfront" {
				src = mailfrontBin
			}
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatalf("%s=%s: %v", key, line, err)
			}
			writeFile(t, dst, b, 0o755)
		}
	}
	return root
}

// copyTree copies a directory of regular files and symbolic links.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(to, 0o755)
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// writeFile writes a file, making its directory.
func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

// TestSystemdNotify runs the binary as systemd runs a Type=notify service,
// with $NOTIFY_SOCKET naming a datagram socket the test reads (a path, and
// an abstract name starting with '@'), and checks what it says there:
//   - READY=1, once, and at that moment every listener serves (IMAPS and
//     POP3S complete a TLS handshake and greet, IMAP and POP3 greet) and the
//     admin endpoint answers /healthz;
//   - every message from the main process (NotifyAccess=main), read from
//     the socket's credentials;
//   - STOPPING=1 after SIGTERM, at the start of the shutdown: while a
//     logged-in session still holds the drain open, before the exit;
//   - no READY=1 while ACME certificates are still pending (the CA cannot
//     be reached; the listeners are not open), nor when a port is taken
//     and the start fails.
func TestSystemdNotify(t *testing.T) {
	envBin := tool(t, "env", "coreutils")
	dv := startDovecot(t)
	for _, abstract := range []bool{false, true} {
		name := "path"
		if abstract {
			name = "abstract"
		}
		t.Run(name, func(t *testing.T) {
			ns := listenNotify(t, abstract)
			adminYAML, admin := adminSection(t)
			f := startNotified(t, envBin, ns, notifiedSpec{imapBackend: dv.imapAddr, pop3Backend: dv.pop3Addr, adminYAML: adminYAML})
			ready := ns.waitFor(t, "READY=1", f.exited)
			checkServing(t, f)
			if code, body := adminGet(t, admin, "/healthz"); code != http.StatusOK {
				t.Errorf("GET /healthz right after READY=1: got %d %s, want 200", code, body)
			}
			t.Logf("READY=1 %v after start", ready.at.Sub(ns.start).Round(time.Millisecond))

			// A logged-in session keeps the drain open after SIGTERM.
			e := &env{dv: dv, mf: f}
			c := e.dialIMAP(t, false, nil)
			if err := c.Login(testUser, testPassword).Wait(); err != nil {
				t.Fatalf("IMAPS login: %v", err)
			}
			if err := syscall.Kill(f.pid, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			ns.waitFor(t, "STOPPING=1", nil)
			select {
			case <-f.exited:
				t.Errorf("mailfront exited before the drain ended (the session is still logged in)")
			default:
			}
			c.Close()
			select {
			case <-f.exited:
			case <-time.After(startTimeout):
				t.Fatalf("mailfront did not exit within %v of SIGTERM and the session's end", startTimeout)
			}
			msgs := ns.sync(t)
			if n := countVar(msgs, "READY=1"); n != 1 {
				t.Errorf("READY=1 sent %d times, want once", n)
			}
			for _, m := range msgs {
				if m.pid != int32(f.pid) {
					t.Errorf("message %q from pid %d, want the main process %d (NotifyAccess=main)", m.vars, m.pid, f.pid)
				}
			}
			t.Logf("messages:\n%s", formatMsgs(msgs))
		})
	}

	t.Run("ACME pending", func(t *testing.T) {
		ns := listenNotify(t, false)
		dir := t.TempDir()
		ports := freePorts(t, 2)
		acme := fmt.Sprintf(`  acme:
    domains: [imap.mailfront.test]
    ca: "https://127.0.0.1:%d/dir"
    storage: "%s"
    challenges:
      http: {address: "127.0.0.1:%d"}`, ports[0], filepath.Join(dir, "acme"), ports[1])
		f := startNotified(t, envBin, ns, notifiedSpec{imapBackend: dv.imapAddr, pop3Backend: dv.pop3Addr, acmeYAML: acme, anyExit: true})
		f.log.wait(t, 0, regexp.MustCompile(`msg="certificates not obtained yet; retrying"`), f.exited)
		msgs := ns.sync(t)
		if n := countVar(msgs, "READY=1"); n != 0 {
			t.Errorf("READY=1 sent while the certificates are pending:\n%s", formatMsgs(msgs))
		}
		if c, err := net.DialTimeout("tcp", f.imaps, time.Second); err == nil {
			c.Close()
			t.Errorf("IMAPS %s accepts connections before the certificate", f.imaps)
		}
		t.Logf("messages while pending:\n%s", formatMsgs(msgs))
	})

	t.Run("port taken", func(t *testing.T) {
		ns := listenNotify(t, false)
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		f, write := notifiedFront(t, t.TempDir(), notifiedSpec{imapBackend: dv.imapAddr, pop3Backend: dv.pop3Addr})
		f.pop3 = taken.Addr().String()
		conf := write()
		r := runClient(t, nil, []string{"NOTIFY_SOCKET=" + ns.name}, mailfrontBin, "run", "--config", conf)
		if r.code == 0 {
			t.Fatalf("mailfront with %s taken: got exit 0, want a failed start\n%s", f.pop3, r)
		}
		msgs := ns.sync(t)
		if n := countVar(msgs, "READY=1"); n != 0 {
			t.Errorf("READY=1 sent by a start that failed:\n%s\n%s", formatMsgs(msgs), r)
		}
		t.Logf("exit %d; messages:\n%s", r.code, formatMsgs(msgs))
	})
}

// notifySocket is the test's end of $NOTIFY_SOCKET: a unixgram socket
// with SO_PASSCRED, so every message carries its sender's pid.
type notifySocket struct {
	name  string // as $NOTIFY_SOCKET says it: a path, or @ and an abstract name
	conn  *net.UnixConn
	start time.Time
	msgs  chan notifyMsg

	mu   sync.Mutex
	seen []notifyMsg
	mark int // sync markers sent so far
}

// notifyMsg is one datagram: its newline-separated assignments.
type notifyMsg struct {
	vars []string
	pid  int32
	at   time.Time
}

// listenNotify opens a notify socket, a file in a temporary directory or
// an abstract one, and reads it until the test ends.
func listenNotify(t *testing.T, abstract bool) *notifySocket {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	if abstract {
		name = fmt.Sprintf("@mailfront-test/notify/%d/%d", os.Getpid(), time.Now().UnixNano())
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on %s: %v", name, err)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
	}); err != nil || serr != nil {
		t.Fatalf("SO_PASSCRED: %v %v", err, serr)
	}
	ns := &notifySocket{name: name, conn: conn, start: time.Now(), msgs: make(chan notifyMsg, 100)}
	go ns.read()
	t.Cleanup(func() { conn.Close() })
	return ns
}

func (ns *notifySocket) read() {
	defer close(ns.msgs)
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	for {
		n, oobn, _, _, err := ns.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		m := notifyMsg{vars: strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n"), pid: -1, at: time.Now()}
		if cms, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				if cred, err := syscall.ParseUnixCredentials(&cm); err == nil {
					m.pid = cred.Pid
				}
			}
		}
		ns.msgs <- m
	}
}

// next returns the next message, which is not one of the test's own sync
// markers; it fails the test at the deadline, or when exited closes.
func (ns *notifySocket) next(t *testing.T, exited <-chan struct{}, deadline <-chan time.Time) notifyMsg {
	t.Helper()
	for {
		select {
		case m, ok := <-ns.msgs:
			if !ok {
				t.Fatalf("notify socket %s closed", ns.name)
			}
			ns.mu.Lock()
			ns.seen = append(ns.seen, m)
			ns.mu.Unlock()
			return m
		case <-exited:
			t.Fatalf("mailfront exited; messages so far:\n%s", formatMsgs(ns.all()))
		case <-deadline:
			t.Fatalf("no message on %s within %v; messages so far:\n%s", ns.name, startTimeout, formatMsgs(ns.all()))
		}
	}
}

// waitFor reads messages until one holds the assignment want, and returns
// it.
func (ns *notifySocket) waitFor(t *testing.T, want string, exited <-chan struct{}) notifyMsg {
	t.Helper()
	deadline := time.After(startTimeout)
	for {
		m := ns.next(t, exited, deadline)
		if countVar([]notifyMsg{m}, want) > 0 {
			return m
		}
	}
}

// sync returns every message mailfront sent so far: it sends the socket a
// marker of its own and reads up to it (datagrams queue in order), so
// nothing sent before this call is still in flight.
func (ns *notifySocket) sync(t *testing.T) []notifyMsg {
	t.Helper()
	ns.mark++
	marker := fmt.Sprintf("X_MAILFRONT_TEST_SYNC=%d", ns.mark)
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: ns.name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(marker)); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(startTimeout)
	for {
		if m := ns.next(t, nil, deadline); countVar([]notifyMsg{m}, marker) > 0 {
			break
		}
	}
	var out []notifyMsg
	for _, m := range ns.all() {
		if !strings.HasPrefix(m.vars[0], "X_MAILFRONT_TEST_SYNC=") {
			out = append(out, m)
		}
	}
	return out
}

func (ns *notifySocket) all() []notifyMsg {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([]notifyMsg(nil), ns.seen...)
}

// countVar counts the messages that hold the assignment v.
func countVar(msgs []notifyMsg, v string) int {
	n := 0
	for _, m := range msgs {
		for _, x := range m.vars {
			if x == v {
				n++
				break
			}
		}
	}
	return n
}

func formatMsgs(msgs []notifyMsg) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "  pid %d: %q\n", m.pid, m.vars)
	}
	return b.String()
}

// notifiedSpec is what a mailfront of TestSystemdNotify runs in front
// of, and with.
type notifiedSpec struct {
	imapBackend, pop3Backend string
	adminYAML                string // an admin: section, or ""
	acmeYAML                 string // a tls: body obtaining certificates over ACME; "" for certificate files
	anyExit                  bool   // do not check the exit code after SIGTERM (a start that never finished)
}

// notifiedFront mints a certificate for localhost and 127.0.0.1 and picks
// four free ports, for a mailfront configured as spec says. write writes
// its configuration in dir, with the addresses f has then, and returns the
// file's path.
func notifiedFront(t *testing.T, dir string, spec notifiedSpec) (f *front, write func() string) {
	t.Helper()
	ca := testpki.NewCA(t)
	certFile, keyFile := ca.WriteLeaf(t, dir, "localhost", "127.0.0.1")
	f = &front{
		serverName: "localhost",
		log:        logFile{filepath.Join(dir, "mailfront.log")},
		exited:     make(chan struct{}),
		pool:       ca.Pool(),
	}
	ports := freePorts(t, 4)
	addr := func(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])) }
	f.imaps, f.imap, f.pop3s, f.pop3 = addr(0), addr(1), addr(2), addr(3)
	tlsYAML := certificatesYAML(certFile, keyFile)
	if spec.acmeYAML != "" {
		tlsYAML = spec.acmeYAML
	}
	return f, func() string {
		conf := f.config(tlsYAML, backends{imap: spec.imapBackend, pop3: spec.pop3Backend}) + spec.adminYAML
		path := filepath.Join(dir, "mailfront.yaml")
		writeFile(t, path, []byte(conf), 0o600)
		return path
	}
}

// minimalConfig writes a valid configuration with one listener and
// returns its path.
func minimalConfig(t *testing.T, dir string) string {
	t.Helper()
	ca := testpki.NewCA(t)
	certFile, keyFile := ca.WriteLeaf(t, dir, "localhost")
	conf := fmt.Sprintf("tls:\n%s\nlisteners:\n  - {name: v, protocol: imap, address: \"127.0.0.1:1\", tls: implicit, backend: \"127.0.0.1:2\"}\n",
		certificatesYAML(certFile, keyFile))
	path := filepath.Join(dir, "mailfront.yaml")
	writeFile(t, path, []byte(conf), 0o600)
	return path
}

// startNotified runs mailfront as systemd would run the unit's ExecStart,
// with NOTIFY_SOCKET set (through env(1), so the process is mailfront
// itself), in front of the two backends. It waits for nothing: the test
// waits for READY=1. At the end of the test it is stopped as every
// mailfront of the suite is, and its exit code must be 0.
func startNotified(t *testing.T, envBin string, ns *notifySocket, spec notifiedSpec) *front {
	t.Helper()
	f, write := notifiedFront(t, t.TempDir(), spec)
	conf := write()
	f.pid = startGroup(t, "mailfront", f.log.path, f.exited, func(cmd *exec.Cmd) {
		if code := cmd.ProcessState.ExitCode(); code != 0 && !spec.anyExit {
			t.Errorf("mailfront exit code after SIGTERM: got %d, want 0", code)
		}
		if t.Failed() {
			b, _ := os.ReadFile(conf)
			t.Logf("mailfront.yaml:\n%s", b)
			t.Logf("mailfront log:\n%s", f.log.String())
		}
	}, envBin, "NOTIFY_SOCKET="+ns.name, mailfrontBin, "run", "--config", conf)
	return f
}

// checkServing checks that each of f's four listeners serves now: implicit
// TLS completes a handshake with the test root and greets, STARTTLS
// listeners greet in plaintext.
func checkServing(t *testing.T, f *front) {
	t.Helper()
	for _, l := range []struct {
		addr, greeting string
		tls            bool
	}{
		{f.imaps, "* OK", true},
		{f.imap, "* OK", false},
		{f.pop3s, "+OK", true},
		{f.pop3, "+OK", false},
	} {
		if err := greets(f, l.addr, l.greeting, l.tls); err != nil {
			t.Errorf("%s right after READY=1: %v", l.addr, err)
		}
	}
}

// greets connects to addr (over TLS when tlsOn) and reads the greeting.
func greets(f *front, addr, want string, tlsOn bool) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var r io.Reader = c
	if tlsOn {
		tc := tlsClient(&customFront{front: f}, c)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		r = tc
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if !strings.HasPrefix(line, want) {
		return fmt.Errorf("greeting %q, want %s", line, want)
	}
	return nil
}

// TestSystemdService runs deploy/mailfront.service under a real systemd:
// Debian's /lib/systemd/systemd as PID 1 of its own PID, mount, UTS, IPC
// and cgroup namespaces (CI's machine does not boot systemd; neither do
// containers), with the unit as shipped plus a drop-in that changes only
// what the test machine needs: the binary and configuration paths (the
// package's /usr/bin/mailfront is not installed), no default dependencies
// (sysinit.target would clean /tmp and start udev on the machine), and
// the log to a file (no journald). The user mailfront exists only in the
// namespace (a copy of /etc/passwd and /etc/group mounted over them) and is
// a member of ssl-cert, which owns the key (root:ssl-cert 0640, as
// README.md's certbot recipe leaves certbot's keys).
//
// It checks what the sandbox must still allow: "systemctl start" returns
// once mailfront said READY=1, the unit is active with mailfront's
// STATUS=; the four listeners on ports below 1024 serve, and an IMAPS
// login through mailfront reaches Dovecot; the process runs as mailfront with the
// ssl-cert group, only CAP_NET_BIND_SERVICE, no new privileges and a
// seccomp filter; /var/lib/mailfront is mailfront's, mode 0700; "systemctl
// reload" reloads the certificates; "systemctl stop" ends it cleanly.
func TestSystemdService(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("TestSystemdService runs systemd in namespaces of its own and needs root (run integration/run as root)")
	}
	unshare := tool(t, "unshare", "util-linux")
	nsenter := tool(t, "nsenter", "util-linux")
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		t.Fatalf("/lib/systemd/systemd: %v (apt-get install systemd)", err)
	}
	unit, err := os.ReadFile(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	dv := startDovecot(t)
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	certFile, keyFile := ca.WriteLeaf(t, dir, "localhost", "127.0.0.1")
	uid, sslCert := namespaceUsers(t, dir)

	f := &front{serverName: "localhost", pool: ca.Pool(), exited: make(chan struct{})}
	low := lowPorts(t, 4)
	f.imaps, f.imap, f.pop3s, f.pop3 = low[0], low[1], low[2], low[3]
	adminYAML, admin := adminSection(t)
	conf := f.config(certificatesYAML("/run/mft/cert.pem", "/run/mft/key.pem"), dv.backends()) + adminYAML
	writeFile(t, filepath.Join(dir, "mailfront.yaml"), []byte(conf), 0o644)
	writeFile(t, filepath.Join(dir, "mailfront.service"), unit, 0o644)

	// The script that sets the namespaces up and becomes systemd.
	script := fmt.Sprintf(`#!/bin/sh
set -eu
d=%[1]q
mount --make-rprivate /
mount -t proc proc /proc
umount -R /sys/fs/cgroup 2>/dev/null || true
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=0755 tmpfs /etc/systemd/system
mount -t tmpfs -o mode=0755 tmpfs /var/lib
mkdir -p /run/mft /run/systemd/system/mailfront.service.d
cp "$d/passwd" "$d/group" "$d/mailfront.yaml" /run/mft/
cp %[2]q /run/mft/mailfront
cp %[3]q /run/mft/cert.pem
cp %[4]q /run/mft/key.pem
mount --bind /run/mft/passwd /etc/passwd
mount --bind /run/mft/group /etc/group
chown root:%[5]d /run/mft/key.pem
chmod 0640 /run/mft/key.pem
chmod 0644 /run/mft/cert.pem /run/mft/mailfront.yaml
chmod 0755 /run/mft/mailfront
cp "$d/mailfront.service" /run/systemd/system/mailfront.service
cat > /run/systemd/system/mailfront.service.d/test.conf <<'EOT'
[Unit]
DefaultDependencies=no
[Service]
ExecStartPre=
ExecStartPre=/run/mft/mailfront validate --config /run/mft/mailfront.yaml
ExecStart=
ExecStart=/run/mft/mailfront run --config /run/mft/mailfront.yaml
StandardOutput=append:/run/mft/mailfront.log
StandardError=append:/run/mft/mailfront.log
EOT
printf '[Unit]\nDescription=mailfront integration test\nDefaultDependencies=no\n' > /run/systemd/system/mailfront-test.target
for u in sysinit.target basic.target network.target network-online.target \
	systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service \
	systemd-tmpfiles-clean.service systemd-tmpfiles-clean.timer \
	systemd-journald.socket systemd-journald.service systemd-udevd.service; do
	ln -s /dev/null "/run/systemd/system/$u"
done
touch /run/mft/mailfront.log /run/mft/console.log
mount --bind /run/mft/console.log /dev/console
export container=mailfront-test
exec /lib/systemd/systemd --system --unit=mailfront-test.target --log-target=console
`, dir, mailfrontBin, certFile, keyFile, sslCert)
	writeFile(t, filepath.Join(dir, "boot.sh"), []byte(script), 0o755)

	cg := testCgroup(t)
	boot := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2" --mount --pid --uts --ipc --cgroup --fork --kill-child "$3"`,
		"boot", cg, unshare, filepath.Join(dir, "boot.sh"))
	out, err := os.Create(filepath.Join(dir, "boot.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	boot.Stdout, boot.Stderr = out, out
	boot.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := boot.Start(); err != nil {
		t.Fatal(err)
	}
	booted := make(chan struct{})
	go func() { boot.Wait(); close(booted) }()
	var pid1 int
	t.Cleanup(func() {
		// unshare --kill-child takes systemd, and with it every process
		// of its PID namespace, along.
		syscall.Kill(boot.Process.Pid, syscall.SIGKILL)
		<-booted
		removeCgroup(t, cg)
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "boot.log"))
			t.Logf("boot.sh:\n%s\nits output:\n%s", script, b)
			t.Logf("mailfront.yaml:\n%s", conf)
		}
	})

	pid1 = childOf(t, boot.Process.Pid, booted)
	inNS := func(args ...string) result {
		return runClient(t, nil, nil, nsenter, append([]string{"-t", strconv.Itoa(pid1), "-m", "-p", "--"}, args...)...)
	}
	f.log = logFile{fmt.Sprintf("/proc/%d/root/run/mft/mailfront.log", pid1)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mailfront log:\n%s", f.log.String())
			t.Logf("systemctl status:\n%s", inNS("systemctl", "status", "--no-pager", "mailfront.service"))
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		r := inNS("systemctl", "is-system-running")
		if s := strings.TrimSpace(string(r.stdout)); s == "running" || s == "degraded" {
			break
		}
		select {
		case <-booted:
			t.Fatalf("systemd exited")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd not running within %v: %s", startTimeout, r)
		}
		time.Sleep(pollEvery)
	}

	start := time.Now()
	if r := inNS("systemctl", "start", "mailfront.service"); r.code != 0 {
		t.Fatalf("systemctl start mailfront: %s", r)
	}
	t.Logf("systemctl start returned after %v", time.Since(start).Round(time.Millisecond))
	show := unitShow(t, inNS)
	if show["ActiveState"] != "active" || show["SubState"] != "running" || show["StatusText"] == "" {
		t.Errorf("after systemctl start: %v, want active, running, with mailfront's STATUS=", show)
	}
	t.Logf("StatusText=%s", show["StatusText"])
	checkServing(t, f)
	e := &env{dv: dv, mf: f}
	c := e.dialIMAP(t, false, nil)
	if err := c.Login(testUser, testPassword).Wait(); err != nil {
		t.Errorf("IMAPS login on %s: %v", f.imaps, err)
	} else {
		c.Logout().Wait()
	}
	if code, body := adminGet(t, admin, "/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz: got %d %s, want 200", code, body)
	}

	mainPID, _ := strconv.Atoi(show["MainPID"])
	status := unitProcStatus(t, hostPID(t, pid1, mainPID))
	for key, want := range map[string]string{
		"Uid":        fmt.Sprintf("%d\t%d\t%d\t%d", uid, uid, uid, uid),
		"CapEff":     "0000000000000400", // CAP_NET_BIND_SERVICE alone
		"CapPrm":     "0000000000000400",
		"CapBnd":     "0000000000000400",
		"CapAmb":     "0000000000000400",
		"NoNewPrivs": "1",
		"Seccomp":    "2", // a filter
	} {
		if status[key] != want {
			t.Errorf("mailfront's %s: got %q, want %q", key, status[key], want)
		}
	}
	if !slices.Contains(strings.Fields(status["Groups"]), strconv.Itoa(sslCert)) {
		t.Errorf("mailfront's groups %q do not include ssl-cert (%d)", status["Groups"], sslCert)
	}
	if r := inNS("stat", "-c", "%U %G %a", "/var/lib/mailfront"); strings.TrimSpace(string(r.stdout)) != "mailfront mailfront 700" {
		t.Errorf("/var/lib/mailfront: got %s, want mailfront mailfront 700", r)
	}

	mark := f.log.size()
	if r := inNS("systemctl", "reload", "mailfront.service"); r.code != 0 {
		t.Errorf("systemctl reload mailfront: %s", r)
	}
	f.log.wait(t, mark, regexp.MustCompile(`msg="certificates reloaded"`), nil)

	if r := inNS("systemctl", "stop", "mailfront.service"); r.code != 0 {
		t.Errorf("systemctl stop mailfront: %s", r)
	}
	show = unitShow(t, inNS)
	if show["ActiveState"] != "inactive" || show["Result"] != "success" || show["ExecMainStatus"] != "0" {
		t.Errorf("after systemctl stop: %v, want inactive, success, exit status 0", show)
	}
	f.log.wait(t, mark, regexp.MustCompile(`msg=stopped`), nil)
}

// unitShow reads mailfront.service's state from systemctl show.
func unitShow(t *testing.T, inNS func(...string) result) map[string]string {
	t.Helper()
	r := inNS("systemctl", "show", "mailfront.service", "-p", "ActiveState,SubState,Result,StatusText,MainPID,ExecMainStatus")
	if r.code != 0 {
		t.Fatalf("systemctl show: %s", r)
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(r.stdout)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		out[k] = v
	}
	return out
}

// namespaceUsers writes dir/passwd and dir/group: this machine's, plus a
// system user and group mailfront, a member of ssl-cert (added when the
// machine has no such group), as the package creates them. It returns
// mailfront's uid (= gid) and ssl-cert's gid.
func namespaceUsers(t *testing.T, dir string) (uid, sslCert int) {
	t.Helper()
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	group, err := os.ReadFile("/etc/group")
	if err != nil {
		t.Fatal(err)
	}
	used := map[int]bool{}
	for _, l := range strings.Split(string(passwd)+string(group), "\n") {
		if f := strings.Split(l, ":"); len(f) > 2 {
			n, _ := strconv.Atoi(f[2])
			used[n] = true
		}
		if strings.HasPrefix(l, "mailfront:") {
			t.Fatalf("this machine already has a user or group mailfront (%s); the test makes its own", l)
		}
	}
	free := func() int {
		for n := 999; n > 100; n-- {
			if !used[n] {
				used[n] = true
				return n
			}
		}
		t.Fatal("no free system uid")
		return 0
	}
	uid = free()
	var lines []string
	sslCert = -1
	for _, l := range strings.Split(strings.TrimRight(string(group), "\n"), "\n") {
		if f := strings.Split(l, ":"); len(f) == 4 && f[0] == "ssl-cert" {
			sslCert, _ = strconv.Atoi(f[2])
			if f[3] != "" {
				f[3] += ","
			}
			f[3] += "mailfront"
			l = strings.Join(f, ":")
		}
		lines = append(lines, l)
	}
	if sslCert < 0 {
		sslCert = free()
		lines = append(lines, fmt.Sprintf("ssl-cert:x:%d:mailfront", sslCert))
	}
	lines = append(lines, fmt.Sprintf("mailfront:x:%d:", uid))
	writeFile(t, filepath.Join(dir, "group"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	passwd = append(passwd, fmt.Sprintf("mailfront:x:%d:%d:mailfront:/var/lib/mailfront:/usr/sbin/nologin\n", uid, uid)...)
	writeFile(t, filepath.Join(dir, "passwd"), passwd, 0o644)
	return uid, sslCert
}

// lowPorts returns n loopback addresses on ports below 1024 that are free
// now: the mail ports first, for CAP_NET_BIND_SERVICE to matter.
func lowPorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for _, p := range append([]int{993, 143, 995, 110}, func() []int {
		var ps []int
		for p := 1023; p >= 600; p-- {
			ps = append(ps, p)
		}
		return ps
	}()...) {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		out = append(out, addr)
		if len(out) == n {
			return out
		}
	}
	t.Fatalf("fewer than %d free ports below 1024 on 127.0.0.1", n)
	return nil
}

// testCgroup makes a cgroup (v2) below this process's own for the test's
// systemd, which takes it as its root: everything it creates stays inside
// and goes with it.
func testCgroup(t *testing.T) string {
	t.Helper()
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mnt := ""
	for _, l := range strings.Split(string(mountinfo), "\n") {
		if before, after, ok := strings.Cut(l, " - "); ok && strings.HasPrefix(after, "cgroup2 ") {
			mnt = strings.Fields(before)[4]
			break
		}
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	path := ""
	for _, l := range strings.Split(string(own), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			path = p
		}
	}
	if mnt == "" {
		t.Fatalf("no cgroup2 file system mounted (/proc/self/mountinfo)")
	}
	cg := filepath.Join(mnt, path, fmt.Sprintf("mailfront-it-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatalf("make a cgroup for systemd: %v", err)
	}
	return cg
}

// removeCgroup removes cg and the cgroups systemd made in it, once their
// processes are gone.
func removeCgroup(t *testing.T, cg string) {
	t.Helper()
	deadline := time.Now().Add(logTimeout)
	for {
		var dirs []string
		filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		var err error
		for i := len(dirs) - 1; i >= 0; i-- {
			if e := os.Remove(dirs[i]); e != nil && !os.IsNotExist(e) {
				err = e
			}
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("remove the test's cgroup %s: %v", cg, err)
			return
		}
		time.Sleep(pollEvery)
	}
}

// childOf waits for the child process of pid (unshare's: the namespaces'
// PID 1) and returns its pid.
func childOf(t *testing.T, pid int, exited <-chan struct{}) int {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(b)); len(f) > 0 {
			child, _ := strconv.Atoi(f[0])
			return child
		}
		select {
		case <-exited:
			t.Fatalf("unshare exited before starting systemd")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("unshare started nothing within %v", startTimeout)
		}
		time.Sleep(pollEvery)
	}
}

// hostPID is this machine's pid of the process nsPID in the PID namespace
// of pid1.
func hostPID(t *testing.T, pid1, nsPID int) int {
	t.Helper()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid1))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); l != ns {
			continue
		}
		ids := strings.Fields(unitProcStatus(t, pid)["NSpid"])
		if len(ids) > 1 && ids[len(ids)-1] == strconv.Itoa(nsPID) {
			return pid
		}
	}
	t.Fatalf("no process %d in systemd's PID namespace", nsPID)
	return 0
}

// unitProcStatus reads /proc/PID/status into its fields.
func unitProcStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("/proc/%d/status: %v", pid, err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}
