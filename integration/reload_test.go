//go:build integration

package integration

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailfront/mailfront/internal/testpki"
)

// kubeName is the name of the second certificate, the one kept in a
// Kubernetes secret volume.
const kubeName = "kube.mailfront.test"

// TestCertFileReload replaces mailfront's certificate files on disk the
// ways real tools do, and checks that new connections get the new
// certificate without a SIGHUP (the file watcher), that a session opened
// before (an IMAP IDLE) goes on untouched, that a broken file keeps the
// previous certificate in service with a log line naming the file, and
// that SIGHUP still reloads. Every new certificate comes from a new CA, so
// a new connection can only verify once the new one is in service.
func TestCertFileReload(t *testing.T) {
	dv := startDovecot(t)
	dir := t.TempDir()

	// Two certificates: localhost in plain files, as certbot's deploy hook
	// or a control panel leaves them, and kubeName in a secret volume
	// (symlinks through ..data), as cert-manager and the kubelet do.
	ca1 := testpki.NewCA(t)
	localKey, kubeKey := testpki.NewKey(t), testpki.NewKey(t)
	local := certPair{cert: filepath.Join(dir, "fullchain.pem"), key: filepath.Join(dir, "privkey.pem")}
	first := issue(t, ca1, localKey, "localhost", "127.0.0.1")
	local.write(t, first, localKey, 0)
	kube := newSecretVolume(t, filepath.Join(dir, "secret"), issue(t, ca1, kubeKey, kubeName), kubeKey)
	caFile := filepath.Join(dir, "ca1.pem")
	if err := os.WriteFile(caFile, ca1.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	mf := runMailfront(t, dv.backends(), dir, certificatesYAML(local.cert, local.key, kube.cert, kube.key), logTimeout)
	mf.caFile, mf.pool = caFile, ca1.Pool()
	e := &env{dv: dv, mf: mf}
	waitServed(t, mf, "localhost", first, ca1)

	// An IDLE session opened before any change, kept through all of them.
	idler := startIdle(t, e)

	t.Run("rename over", func(t *testing.T) {
		ca := testpki.NewCA(t)
		key := testpki.NewKey(t)
		c := issue(t, ca, key, "localhost", "127.0.0.1")
		localKey = key
		mark := mf.log.size()
		local.renameOver(t, c, key)
		waitServed(t, mf, "localhost", c, ca)
		mf.log.wait(t, mark, regexp.MustCompile(`msg="certificates reloaded"`), mf.exited)
		// A real client agrees.
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		if r := sClient(t, imapQuit, mf.imaps, "-CAfile", caFile, "-verify_return_error", "-verify_hostname", "localhost"); r.code != 0 || !strings.Contains(string(r.stderr), "Verification: OK") {
			t.Fatalf("openssl s_client with the new CA: got %s\nwant exit 0 and Verification: OK", r)
		}
	})

	// The in-place rewrite leaves the certificate padded to a fixed size,
	// so that the SIGHUP case below can rewrite it without changing it.
	var current tls.Certificate
	t.Run("rewrite in place", func(t *testing.T) {
		ca := testpki.NewCA(t)
		key := testpki.NewKey(t)
		current = issue(t, ca, key, "localhost", "127.0.0.1")
		localKey = key
		mark := mf.log.size()
		local.write(t, current, key, paddedSize)
		waitServed(t, mf, "localhost", current, ca)
		mf.log.wait(t, mark, regexp.MustCompile(`msg="certificates reloaded"`), mf.exited)
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("secret volume swap", func(t *testing.T) {
		ca := testpki.NewCA(t)
		key := testpki.NewKey(t)
		c := issue(t, ca, key, kubeName)
		mark := mf.log.size()
		kube.swap(t, c, key)
		waitServed(t, mf, kubeName, c, ca)
		mf.log.wait(t, mark, regexp.MustCompile(`msg="certificates reloaded"`), mf.exited)
		waitServed(t, mf, "localhost", current, nil) // the other one stays
	})

	// SIGHUP reloads what the watcher cannot see: the same size, the same
	// inode and the modification time put back (as cp -p or rsync -t of
	// a file of the same size leave it).
	t.Run("SIGHUP", func(t *testing.T) {
		ca := testpki.NewCA(t)
		c := issue(t, ca, localKey, "localhost", "127.0.0.1")
		local.rewriteUnseen(t, c)
		mark := mf.log.size()
		if err := syscall.Kill(mf.pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		mf.log.wait(t, mark, regexp.MustCompile(`msg="certificates reloaded"`), mf.exited)
		waitServed(t, mf, "localhost", c, ca)
		current = c
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("broken file", func(t *testing.T) {
		ca := testpki.NewCA(t)
		good := chainPEM(issue(t, ca, localKey, "localhost", "127.0.0.1"), 0)
		broken := good[:len(good)/2] // a write cut short: disk full, a crash
		mark := mf.log.size()
		renameOver(t, local.cert, broken)
		failed := regexp.MustCompile(`msg="certificate reload failed.*error=.*` + regexp.QuoteMeta(local.cert))
		line := mf.log.wait(t, mark, failed, mf.exited)
		t.Logf("mailfront logged: %s", line)
		if !strings.Contains(line, "level=ERROR") && !strings.Contains(line, "level=WARN") {
			t.Errorf("got %q, want a WARN or ERROR line", line)
		}
		waitServed(t, mf, "localhost", current, nil)

		// SIGHUP with the broken file fails the same way, and changes
		// nothing either.
		mark = mf.log.size()
		if err := syscall.Kill(mf.pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		mf.log.wait(t, mark, failed, mf.exited)
		waitServed(t, mf, "localhost", current, nil)
	})

	// Through it all the IDLE session stayed open: a delivery still
	// reaches it, and it still takes commands.
	idler.check(t, e)
}

// paddedSize is the size the in-place rewrite pads the certificate file
// to, with trailing newlines (PEM readers skip them); a P-256 leaf and its
// CA take about 1.2 KB.
const paddedSize = 4096

// certPair is a certificate chain file and its key file.
type certPair struct {
	cert, key string
}

// write writes c's chain and key over the files in place (same inodes),
// the chain padded to pad bytes when pad is not 0.
func (p certPair) write(t *testing.T, c tls.Certificate, key crypto.Signer, pad int) {
	t.Helper()
	if err := os.WriteFile(p.key, keyPEM(t, key), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.cert, chainPEM(c, pad), 0o644); err != nil {
		t.Fatal(err)
	}
}

// renameOver writes the new files under temporary names in the same
// directory and renames them over the old ones, so a reader only ever
// sees a whole file: what certbot, acme.sh and most deploy scripts do.
func (p certPair) renameOver(t *testing.T, c tls.Certificate, key crypto.Signer) {
	t.Helper()
	renameOver(t, p.key, keyPEM(t, key))
	renameOver(t, p.cert, chainPEM(c, 0))
}

// rewriteUnseen rewrites the certificate in place with c's chain, padded
// to the size the file has, and puts its modification time back: nothing
// a stat shows changes, only the content.
func (p certPair) rewriteUnseen(t *testing.T, c tls.Certificate) {
	t.Helper()
	before, err := os.Stat(p.cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.cert, chainPEM(c, int(before.Size())), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p.cert, time.Time{}, before.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(p.cert)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) || !os.SameFile(before, after) {
		t.Fatalf("rewrite: got size %d, mtime %v, want %d, %v, the same inode", after.Size(), after.ModTime(), before.Size(), before.ModTime())
	}
}

func renameOver(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// secretVolume is a Kubernetes secret as the kubelet mounts it: the files
// live in a timestamped directory, ..data points at it, and tls.crt and
// tls.key point through ..data. An update writes a new directory and
// renames a new ..data link over the old one, one atomic swap for both
// files.
type secretVolume struct {
	certPair
	dir string
	gen int
}

func newSecretVolume(t *testing.T, dir string, c tls.Certificate, key crypto.Signer) *secretVolume {
	t.Helper()
	v := &secretVolume{certPair: certPair{cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key")}, dir: dir}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	v.swap(t, c, key)
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// swap publishes c and key the kubelet's way (its AtomicWriter).
func (v *secretVolume) swap(t *testing.T, c tls.Certificate, key crypto.Signer) {
	t.Helper()
	v.gen++
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%09d", v.gen, v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.dir, ts, "tls.crt"), chainPEM(c, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.dir, ts, "tls.key"), keyPEM(t, key), 0o600); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	if err := os.Symlink(ts, filepath.Join(v.dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(v.dir, "..data_tmp"), filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// issue signs a day's leaf for names with key.
func issue(t *testing.T, ca *testpki.CA, key crypto.Signer, names ...string) tls.Certificate {
	t.Helper()
	c, err := ca.Issue(key, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), names...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// chainPEM is c's chain as PEM, padded with newlines to pad bytes.
func chainPEM(c tls.Certificate, pad int) []byte {
	var b []byte
	for _, der := range c.Certificate {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if n := pad - len(b); n > 0 {
		b = append(b, bytes.Repeat([]byte("\n"), n)...)
	}
	return b
}

func keyPEM(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// servedLeaf handshakes with mailfront's IMAPS listener as a client
// sending serverName and returns the leaf it served, unverified (the
// caller compares it).
func servedLeaf(f *front, serverName string) (*x509.Certificate, []*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", f.imaps, &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	chain := c.ConnectionState().PeerCertificates
	return chain[0], chain[1:], nil
}

// waitServed polls new connections until mailfront serves want's leaf to
// clients sending serverName, then, when ca is set, checks the chain it
// served verifies against ca for that name.
func waitServed(t *testing.T, f *front, serverName string, want tls.Certificate, ca *testpki.CA) {
	t.Helper()
	deadline := time.Now().Add(logTimeout)
	for {
		leaf, inter, err := servedLeaf(f, serverName)
		if err == nil && leaf.SerialNumber.Cmp(want.Leaf.SerialNumber) == 0 {
			if ca != nil {
				pool := x509.NewCertPool()
				for _, c := range inter {
					pool.AddCert(c)
				}
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), Intermediates: pool, DNSName: serverName}); err != nil {
					t.Fatalf("served certificate for %s: %v", serverName, err)
				}
			}
			return
		}
		select {
		case <-f.exited:
			t.Fatal("mailfront exited")
		default:
		}
		if time.Now().After(deadline) {
			got := fmt.Sprint(err)
			if err == nil {
				got = fmt.Sprintf("serial %x from %q", leaf.SerialNumber, leaf.Issuer.CommonName)
			}
			t.Fatalf("certificate for %s: got %s after %v, want serial %x", serverName, got, logTimeout, want.Leaf.SerialNumber)
		}
		time.Sleep(handshakeEvery)
	}
}

// handshakeEvery is how often waitServed tries a new connection: each one
// is a session in mailfront's log.
const handshakeEvery = 100 * time.Millisecond

// idler is an IMAP session idling through mailfront.
type idler struct {
	c      *imapclient.Client
	idle   *imapclient.IdleCommand
	sel    uint32   // messages when selected
	next   imap.UID // UIDNEXT when selected
	exists chan uint32
}

func startIdle(t *testing.T, e *env) *idler {
	t.Helper()
	i := &idler{exists: make(chan uint32, 16)}
	opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				i.exists <- *d.NumMessages
			}
		},
	}}
	i.c = e.dialIMAP(t, false, opts)
	if err := i.c.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	sel, err := i.c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	i.sel, i.next = sel.NumMessages, sel.UIDNext
	if i.idle, err = i.c.Idle(); err != nil {
		t.Fatalf("idle: %v", err)
	}
	return i
}

// check delivers a message, waits for its EXISTS, ends the IDLE and
// fetches the message.
func (i *idler) check(t *testing.T, e *env) {
	t.Helper()
	msg := newMessage("delivered after the certificates changed")
	e.dv.deliver(t, msg)
	want := i.sel + 1
	deadline := time.After(logTimeout)
	for got := uint32(0); got != want; {
		select {
		case got = <-i.exists:
		case <-deadline:
			t.Fatalf("no EXISTS %d in the session idling since before the reloads within %v", want, logTimeout)
		}
	}
	if err := i.idle.Close(); err != nil {
		t.Fatalf("DONE: %v", err)
	}
	if err := i.idle.Wait(); err != nil {
		t.Fatalf("IDLE end: %v", err)
	}
	if got := fetchUID(t, i.c, i.next); !bytes.Equal(got, msg) {
		t.Errorf("UID %d: got %d bytes (%.60q...), want the %d bytes delivered", i.next, len(got), got, len(msg))
	}
	if err := i.c.Logout().Wait(); err != nil {
		t.Errorf("logout: %v", err)
	}
}
