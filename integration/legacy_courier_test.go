//go:build integration

package integration

// Courier IMAP and POP3 (Debian's courier-imap and courier-pop) behind
// mailfront: both log users in through courier-authdaemon, here with a
// userdb, and log to syslog through courierlogger.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailfront/mailfront/internal/pop3client"
)

// courierPackages are the Debian packages of the Courier root.
var courierPackages = []string{"courier-imap", "courier-pop", "courier-authdaemon", "courier-authlib-userdb"}

const (
	// courierHomes holds the users' homes and maildirs in the root; each
	// run makes it afresh and removes it.
	courierHomes = "/srv/mailfront-it-courier"
	// courierMailUID is Debian's mail user and group (base-passwd), which
	// owns the maildirs and which Courier's mail processes run as.
	courierMailUID = 8
	// courierAuthSocket is where authdaemond listens and where Courier's
	// login processes ask it.
	courierAuthSocket = "/run/courier/authdaemon/socket"
	// courierTemporary is what Courier answers a right password when it
	// cannot reach authdaemond (authlib's "Temporary problem").
	courierTemporary = "Temporary problem, please try again later"
)

// courierOtherUsers have passwords that need quoting or a literal in IMAP
// and go as they are in POP3.
var courierOtherUsers = map[string]string{
	"mfquote": `with "quotes" and \back\slash\`,
	"mfspace": "  spaces  inside and around  ",
	"mfutf8":  "Grüße, 日本語 pass",
}

// courierAuthdaemonrc is /etc/courier/authdaemonrc: Debian's, with the
// userdb module instead of PAM.
const courierAuthdaemonrc = `# written by mailfront's integration suite
authmodulelist="authuserdb"
daemons=2
authdaemonvar=/run/courier/authdaemon
DEBUG_LOGIN=0
DEFAULTOPTIONS=""
LOGGEROPTS=""
`

// courierServer starts one of Courier's servers the way Debian's
// /usr/sbin/imapd, imapd-ssl, pop3d and pop3d-ssl do (Debian's settings
// from /etc/courier, the TLS session cache, couriertcpd, the login
// program, the server), in the foreground under courierlogger, which
// sends their messages to syslog: %[1]s is the settings file (its -ssl
// companion is read too, as Debian's scripts do), %[2]s the overrides,
// %[3]d the port, %[4]s the programs, %[5]s the name in syslog.
const courierServer = `set -a
. %[1]s
. %[1]s-ssl
%[2]s
if [ -n "$TLS_CACHEFILE" ] && [ ! -f "$TLS_CACHEFILE" ]; then
	touch "$TLS_CACHEFILE" && chown courier:courier "$TLS_CACHEFILE" && chmod 600 "$TLS_CACHEFILE"
fi
exec /usr/sbin/courierlogger -name=%[5]s /usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP $TCPDOPTS %[3]d %[4]s Maildir`

// courierOverrides change Debian's settings for mailfront: no STARTTLS
// (mailfront talks plaintext on loopback), and every connection comes
// from mailfront's one address, so the per-address limit (20 for IMAP, 4
// for POP3 in Debian's files) must allow every client at once. IDLE polls
// the maildir every second (Debian: 60 s) so the IDLE case is quick.
var courierOverrides = map[string]string{
	"imapd": "IMAP_STARTTLS=NO\nMAXPERIP=1000\nIMAP_IDLE_TIMEOUT=1",
	"pop3d": "POP3_STARTTLS=NO\nMAXPERIP=1000",
}

// courier is Courier's authdaemond, imapd and pop3d running in a root.
type courier struct {
	// t is the whole test: servers started again from a subtest (the
	// matrix's restart) live until it ends, not the subtest's end.
	t                  *testing.T
	root               string
	imapAddr, pop3Addr string
	log                logFile  // syslog: imapd's and pop3d's login lines
	dir                string   // the test's directory outside the root
	outs               []string // each start's standard output and error
	procs              map[string]*courierProc
	deliveries         int
}

// courierProc is one of Courier's processes, started with startInRoot.
type courierProc struct {
	pid    int
	exited chan struct{}
}

func startCourier(t *testing.T) *courier {
	t.Helper()
	root := legacyRoot(t, "courier", courierPackages...)
	dir := t.TempDir()
	ports := freePorts(t, 2)
	c := &courier{
		t:        t,
		root:     root,
		imapAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		pop3Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		dir:      dir,
		procs:    map[string]*courierProc{},
	}
	c.log = syslogIn(t, root, filepath.Join(dir, "syslog"))
	homes := inRoot(root, courierHomes)
	if err := os.RemoveAll(homes); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(homes) })
	// Courier's mail processes, running as mail, reach the homes.
	if err := os.MkdirAll(homes, 0o755); err != nil {
		t.Fatal(err)
	}
	users := map[string]string{testUser: testPassword}
	for u, p := range courierOtherUsers {
		users[u] = p
	}
	var userdb strings.Builder
	for u, p := range users {
		home := courierHomes + "/" + u
		c.writeMaildir(t, u, nil)
		// userdbpw reads the password's first line and prints its
		// MD5-crypt hash (its default, DES crypt, keeps 8 characters).
		hash := strings.TrimSpace(runInRoot(t, root, []byte(p+"\n"), "userdbpw", "-md5"))
		fmt.Fprintf(&userdb, "%s\tuid=%d|gid=%d|home=%s|systempw=%s\n", u, courierMailUID, courierMailUID, home, hash)
	}
	c.writeMaildir(t, testUser, testMessages())
	writeFile(t, inRoot(root, "/etc/courier/userdb"), []byte(userdb.String()), 0o600)
	runInRoot(t, root, nil, "makeuserdb")
	writeFile(t, inRoot(root, "/etc/courier/authdaemonrc"), []byte(courierAuthdaemonrc), 0o640)
	if err := os.MkdirAll(filepath.Dir(inRoot(root, courierAuthSocket)), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Courier's syslog:\n%s", c.log)
			for _, out := range c.outs {
				t.Logf("%s:\n%s", filepath.Base(out), logFile{out})
			}
			t.Logf("/etc/courier/userdb:\n%s", userdb.String())
		}
	})
	c.startAuthd(t)
	c.startServers(t)
	return c
}

// writeMaildir makes user's home and maildir, with msgs in new/ named so
// that Courier keeps them in order. Courier keeps mail with Unix line
// ends, as MDAs write it, and serves it with CRLF (a CRLF file would come
// out with CR CR LF).
func (c *courier) writeMaildir(t *testing.T, user string, msgs [][]byte) {
	t.Helper()
	home := inRoot(c.root, courierHomes+"/"+user)
	for _, sub := range []string{"Maildir/new", "Maildir/cur", "Maildir/tmp"} {
		if err := os.MkdirAll(filepath.Join(home, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range msgs {
		name := fmt.Sprintf("%d.M%dP%d.mailfront-it", 1700000000+i, i, os.Getpid())
		writeFile(t, filepath.Join(home, "Maildir", "new", name), lf(m), 0o600)
	}
	err := filepath.Walk(home, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, courierMailUID, courierMailUID)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// deliver drops msg into the main user's maildir as an MDA does.
func (c *courier) deliver(t *testing.T, msg []byte) {
	t.Helper()
	c.deliveries++
	maildir := inRoot(c.root, courierHomes+"/"+testUser+"/Maildir")
	name := fmt.Sprintf("%d.M%dP%d.mailfront-it-delivery", time.Now().Unix(), c.deliveries, os.Getpid())
	tmp := filepath.Join(maildir, "tmp", name)
	writeFile(t, tmp, lf(msg), 0o600)
	if err := os.Lchown(tmp, courierMailUID, courierMailUID); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(maildir, "new", name)); err != nil {
		t.Fatal(err)
	}
}

// startAuthd starts authdaemond in the foreground and waits until its
// socket takes connections.
func (c *courier) startAuthd(t *testing.T) {
	t.Helper()
	sock := inRoot(c.root, courierAuthSocket)
	os.Remove(sock) // a socket left by an earlier run answers nobody
	c.start(t, "authdaemond", "/usr/lib/courier/courier-authlib/authdaemond")
	deadline := time.Now().Add(startTimeout)
	for {
		conn, err := net.Dial("unix", sock)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-c.procs["authdaemond"].exited:
			t.Fatalf("authdaemond exited before its socket took connections")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("authdaemond's socket %s took no connection within %v: %v", sock, startTimeout, err)
		}
		time.Sleep(pollEvery)
	}
}

// Courier's login programs and servers, as Debian's scripts start them.
const (
	courierIMAPPrograms = "/usr/lib/courier/courier/imaplogin /usr/bin/imapd"
	courierPOP3Programs = "/usr/lib/courier/courier/courierpop3login /usr/lib/courier/courier/courierpop3d"
	// courierTLS runs the login program behind couriertls, as imapd-ssl
	// and pop3d-ssl do.
	courierTLS = "$COURIERTLS -server -tcpd -user=courier "
)

// courierStart is one of Courier's servers to start: its name in syslog
// and for stop, its settings file, overrides and programs.
type courierStart struct{ name, settings, overrides, programs, addr string }

// startServers starts imapd and pop3d on c's ports.
func (c *courier) startServers(t *testing.T) {
	t.Helper()
	c.startEach(t, []courierStart{
		{"imapd", "/etc/courier/imapd", courierOverrides["imapd"], courierIMAPPrograms, c.imapAddr},
		{"pop3d", "/etc/courier/pop3d", courierOverrides["pop3d"], courierPOP3Programs, c.pop3Addr},
	})
}

// startEach starts each server and waits until its port takes
// connections.
func (c *courier) startEach(t *testing.T, servers []courierStart) {
	t.Helper()
	for _, s := range servers {
		p, _ := strconv.Atoi(port(s.addr))
		script := fmt.Sprintf(courierServer, s.settings, s.overrides, p, s.programs, s.name)
		c.start(t, s.name, "/usr/bin/env", "-i", "/bin/sh", "-c", script)
		waitPort(t, s.addr, c.procs[s.name].exited)
	}
}

// courierShipped is where startShipped's servers listen.
type courierShipped struct{ imap, imaps, pop3, pop3s string }

// startShipped starts Courier's four servers as Debian 12 ships them, on
// ports of their own beside c's: imapd and pop3d with STARTTLS/STLS and
// plaintext logins allowed before it (IMAP_TLS_REQUIRED=0,
// POP3_TLS_REQUIRED=0), imapd-ssl and pop3d-ssl with implicit TLS,
// through couriertls (GnuTLS) with Debian's TLS settings and the
// self-signed certificates its postinst makes (mkimapdcert,
// mkpop3dcert), made afresh here so that a cached root's are never
// older than the run. Only the per-address limit is raised, as for c's.
func (c *courier) startShipped(t *testing.T) courierShipped {
	t.Helper()
	for _, name := range []string{"imapd", "pop3d"} {
		pem := inRoot(c.root, "/etc/courier/"+name+".pem")
		if err := os.Remove(pem); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		runInRoot(t, c.root, nil, "mk"+name+"cert")
	}
	ports := freePorts(t, 4)
	addr := func(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])) }
	s := courierShipped{imap: addr(0), imaps: addr(1), pop3: addr(2), pop3s: addr(3)}
	c.startEach(t, []courierStart{
		// /usr/sbin/imapd: IMAP_STARTTLS=$IMAPDSTARTTLS (YES).
		{"imapd-shipped", "/etc/courier/imapd", "MAXPERIP=1000\nIMAP_STARTTLS=$IMAPDSTARTTLS", courierIMAPPrograms, s.imap},
		// /usr/sbin/imapd-ssl: IMAP_TLS=1.
		{"imapd-ssl", "/etc/courier/imapd", "MAXPERIP=1000\nIMAP_TLS=1", courierTLS + courierIMAPPrograms, s.imaps},
		// /usr/sbin/pop3d: pop3d-ssl's POP3_STARTTLS=YES as it is.
		{"pop3d-shipped", "/etc/courier/pop3d", "MAXPERIP=1000", courierPOP3Programs, s.pop3},
		// /usr/sbin/pop3d-ssl.
		{"pop3d-ssl", "/etc/courier/pop3d", "MAXPERIP=1000\nPOP3_TLS=1\nPOP3_STARTTLS=NO\nPOP3_TLS_REQUIRED=0", courierTLS + courierPOP3Programs, s.pop3s},
	})
	return s
}

// stopServers stops imapd and pop3d (not authdaemond) and waits until
// their ports refuse connections.
func (c *courier) stopServers(t *testing.T) {
	t.Helper()
	for _, s := range []struct{ name, addr string }{{"imapd", c.imapAddr}, {"pop3d", c.pop3Addr}} {
		c.stop(t, s.name)
		waitClosed(t, s.addr)
	}
}

// start runs args in the root as the server name, its output in a file
// of its own for each start (startInRoot starts the file afresh).
func (c *courier) start(t *testing.T, name string, args ...string) {
	t.Helper()
	out := filepath.Join(c.dir, fmt.Sprintf("%s.%d.out", name, len(c.outs)+1))
	c.outs = append(c.outs, out)
	pid, exited := startInRoot(c.t, c.root, name, out, nil, args...)
	c.procs[name] = &courierProc{pid: pid, exited: exited}
}

// stop stops the server name (SIGTERM, then its process group).
func (c *courier) stop(t *testing.T, name string) {
	t.Helper()
	p := c.procs[name]
	stopGroup(t, name, p.pid, p.exited)
}

// waitClosed polls addr until it refuses connections.
func waitClosed(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections %v after its server was stopped", addr, startTimeout)
		}
		time.Sleep(pollEvery)
	}
}

// TestCourier runs the client matrix in front of Courier, then stops
// courier-authdaemon alone: Courier then answers a right password with
// its "Temporary problem" (POP3 -ERR, IMAP an untagged BYE), which
// mailfront must pass on as backend trouble, never as a failed login.
func TestCourier(t *testing.T) {
	c := startCourier(t)
	s := &legacyMailServer{
		name:     "Courier",
		backends: backends{imap: c.imapAddr, pop3: c.pop3Addr},
		user:     testUser,
		password: testPassword,
		log:      c.log,
		// imaplogin and courierpop3login log every attempt:
		// "LOGIN, user=u, ip=[...]" or "LOGIN FAILED, user=u, ...".
		loginRE:    regexp.MustCompile(`(imapd|pop3d)(\[\d+\])?: (INFO: )?LOGIN( FAILED)?, user=`),
		deliver:    c.deliver,
		stop:       c.stopServers,
		start:      c.startServers,
		idle:       true,
		otherUsers: courierOtherUsers,
		exact:      true,
	}
	mf := startMailfrontFor(t, s.frontBackends(t))
	runLegacyMatrix(t, s, mf)
	t.Run("authdaemon stopped", func(t *testing.T) { courierAuthDown(t, c, &env{mf: mf}) })
	t.Run("client address loopback", func(t *testing.T) { courierLoopback(t, c) })
}

// courierLoopback checks the one way Debian 12's Courier (5.0.13) can
// tell clients apart behind mailfront: it reads no PROXY header
// (couriertcpd's -haproxy came in 5.2.7) and takes no address from ID, so
// mailfront's client_address: loopback connects from an address of the
// client network's own in 127.0.0.0/8, which Courier logs (ip=) and
// counts in its per-address limit (MAXPERIP).
func courierLoopback(t *testing.T, c *courier) {
	lb := startMailfrontFor(t, backends{imap: c.imapAddr, pop3: c.pop3Addr,
		imapKeys: ", client_address: loopback", pop3Keys: ", client_address: loopback"})
	e := &env{mf: lb}
	for _, tt := range []struct {
		listener string
		login    func(t *testing.T)
	}{
		{lnIMAPS, func(t *testing.T) {
			i := e.dialIMAP(t, false, nil)
			if err := i.Login(testUser, testPassword).Wait(); err != nil {
				t.Fatalf("LOGIN: %v", err)
			}
			i.Logout().Wait()
		}},
		{lnPOP3S, func(t *testing.T) {
			p := e.pop3Client(t, false)
			if err := p.Login(testUser, testPassword); err != nil {
				t.Fatalf("USER/PASS: %v", err)
			}
			p.Quit()
		}},
	} {
		t.Run(tt.listener, func(t *testing.T) {
			mark, mfMark := c.log.size(), lb.log.size()
			tt.login(t)
			line := lb.log.wait(t, mfMark, regexp.MustCompile(`msg=login .*listener=`+tt.listener+` .*backend_source=`), lb.exited)
			src, _ := logAttr(line, "backend_source")
			if !strings.HasPrefix(src, "127.") || src == "127.0.0.1" {
				t.Fatalf("mailfront's login line: got backend_source=%q, want an address in 127.0.0.0/8 other than 127.0.0.1", src)
			}
			c.log.wait(t, mark, regexp.MustCompile(`(imapd|pop3d): LOGIN, user=`+testUser+`, ip=\[::ffff:`+regexp.QuoteMeta(src)+`\]`), nil)
		})
	}
}

// courierAuthDown stops authdaemond with imapd and pop3d still running.
// Courier's answers, read directly first: POP3 "-ERR Temporary problem,
// please try again later", IMAP "* BYE Temporary problem, please try
// again later" and the connection closed, with no tagged reply.
// mailfront must tell the client to come back later (POP3 -ERR
// [SYS/TEMP], IMAP NO [UNAVAILABLE]) and log "backend unavailable", not
// "login failed", which fail2ban would count against the user.
func courierAuthDown(t *testing.T, c *courier, e *env) {
	c.stop(t, "authdaemond")
	mf := e.mf
	mark := mf.log.size()
	t.Run("pop3", func(t *testing.T) {
		w := dialWire(t, c.pop3Addr)
		w.do(step{"", "+OK"})
		w.do(step{"USER " + testUser, "+OK"})
		if got, want := w.do(step{"PASS " + testPassword, "-ERR"}), "-ERR "+courierTemporary; got != want {
			t.Errorf("Courier's PASS without authdaemond: got %q, want %q", got, want)
		}
		p := e.pop3Client(t, false)
		if line, ok := pop3client.IsERR(p.Login(testUser, testPassword)); !ok || !strings.HasPrefix(line, "-ERR [SYS/TEMP] ") {
			t.Errorf("USER/PASS through mailfront without authdaemond: got %q, want -ERR [SYS/TEMP] ...", line)
		}
		mf.log.wait(t, mark, regexp.MustCompile(`level=WARN msg="backend unavailable" .*listener=`+lnPOP3S+` .*user=`+testUser+` `), mf.exited)
	})
	t.Run("imap", func(t *testing.T) {
		w := dialWire(t, c.imapAddr)
		w.do(step{"", "* OK"})
		if got, want := w.do(step{"a LOGIN " + testUser + " " + imapQuote(testPassword), "* BYE"}), "* BYE "+courierTemporary; got != want {
			t.Errorf("Courier's LOGIN without authdaemond: got %q, want %q", got, want)
		}
		i := e.dialIMAP(t, false, nil)
		err := i.Login(testUser, testPassword).Wait()
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != imap.ResponseCodeUnavailable {
			t.Errorf("LOGIN through mailfront without authdaemond: got %v, want NO [UNAVAILABLE]", err)
		}
		mf.log.wait(t, mark, regexp.MustCompile(`level=WARN msg="backend unavailable" .*listener=`+lnIMAPS+` .*user=`+testUser+` `), mf.exited)
	})
	if failed := lines(mf.log.since(mark), regexp.MustCompile(`msg="login failed"`)); len(failed) > 0 {
		t.Errorf("mailfront logged %q without authdaemond, want only backend unavailable", failed)
	}
	c.log.wait(t, 0, regexp.MustCompile(`authdaemon: s_connect\(\) failed`), nil)

	c.startAuthd(t)
	p := e.pop3Client(t, false)
	if err := p.Login(testUser, testPassword); err != nil {
		t.Errorf("USER/PASS through mailfront with authdaemond back: %v", err)
	}
	p.Quit()
	i := e.dialIMAP(t, false, nil)
	if err := i.Login(testUser, testPassword).Wait(); err != nil {
		t.Errorf("LOGIN through mailfront with authdaemond back: %v", err)
	}
	i.Logout().Wait()
}
