//go:build integration

package integration

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailfront/mailfront/internal/testpki"
)

// TestContainer builds mailfront as the Dockerfile does and runs it as
// the image would: as uid/gid 65532 with no capability, the root
// read-only, only the ACME volume writable (container_helpers_test.go
// says how, without a container engine). The binary is static and
// stamped with the build arguments. With ACME it obtains a certificate
// from Pebble into the volume, serves IMAPS, logs in to Dovecot and
// answers /healthz and /readyz; it cannot write elsewhere, not even in
// /tmp. With certbot's certificates, as compose.yaml runs it, the
// deploy hook's copies and README's group recipe both let it read the
// keys, through a real renewal, and compose.yaml's healthcheck passes;
// without a recipe it cannot read them. A port below 1024 is refused, as
// README says.
func TestContainer(t *testing.T) {
	img := buildImage(t, t.TempDir())
	checkStaticBuild(t, img)
	t.Run("version", func(t *testing.T) {
		r := runInImage(t, img, nil, img.entrypoint[0], "version")
		for _, v := range img.args {
			if r.code != 0 || !strings.Contains(string(r.stdout), v) {
				t.Errorf("mailfront version in the image: want %q in its output\n%s", v, r)
			}
		}
	})
	t.Run("privileged port", func(t *testing.T) { containerLowPort(t, img) })

	dv := startDovecot(t)
	ns := startNamed(t)
	ports := freePorts(t, 2)
	pb := startPebble(t, ns.addr, ports[0], ports[1])
	t.Run("ACME", func(t *testing.T) { containerACME(t, img, dv, pb) })
	t.Run("read-only root", func(t *testing.T) { containerReadOnly(t, img, pb) })
	t.Run("certbot", func(t *testing.T) { containerCertbot(t, img, dv, pb) })
}

// containerACMEConf is a configuration that obtains imapName from Pebble
// into storage (empty: the default, the image's volume) and serves it on
// IMAPS in front of Dovecot, with the admin endpoint on.
func containerACMEConf(t *testing.T, pb *pebble, dv *dovecot, storage string) (dir, imaps, admin string) {
	t.Helper()
	dir = t.TempDir()
	ports := freePorts(t, 2)
	imaps = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	admin = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	ca, err := os.ReadFile(pb.serverCA)
	if err != nil {
		t.Fatal(err)
	}
	writeFileMode(t, filepath.Join(dir, "ca-root.pem"), string(ca), 0o644)
	if storage != "" {
		storage = "\n    storage: " + storage
	}
	backend := "127.0.0.1:1"
	if dv != nil {
		backend = dv.imapAddr
	}
	conf := fmt.Sprintf(`tls:
  acme:
    domains: [%s]
    email: postmaster@%s
    ca: %q
    ca_root: /etc/mailfront/ca-root.pem%s
    challenges:
      http: {address: "127.0.0.1:%d"}
listeners:
  - {name: imaps, protocol: imap, address: %q, tls: implicit, backend: %q}
admin: {address: %q}
log: {format: text, level: debug}
`, imapName, testZone, pb.dirURL, storage, pb.httpPort, imaps, backend, admin)
	writeFileMode(t, filepath.Join(dir, "mailfront.yaml"), conf, 0o644)
	return dir, imaps, admin
}

// containerACME runs the image's own command on an ACME configuration
// mounted at /etc/mailfront, its storage the default, the image's volume.
func containerACME(t *testing.T, img *containerImage, dv *dovecot, pb *pebble) {
	conf, imaps, admin := containerACMEConf(t, pb, dv, "")
	c := startImage(t, img, imageRun{binds: []roBind{{conf, "/etc/mailfront"}}}, true)
	c.imaps, c.pool, c.serverName = imaps, pb.rootPool, imapName
	c.log.waitWithin(t, 0, logMsg("listening", "imaps"), c.exited, acmeTimeout)
	checkCredentials(t, img, c.pid)

	checkIssuedBy(t, c.front, pb, imapName, imapName)
	checkLogin(t, c.front)
	checkAdmin(t, admin)

	// What ACME stored went into the volume, owned by the image's user.
	if n := checkOwnedBy(t, c.volume, img.uid, img.gid); n == 0 {
		t.Errorf("the volume %s is empty: ACME stored nothing there", c.volume)
	}
	found := false
	filepath.WalkDir(c.volume, func(p string, d fs.DirEntry, err error) error {
		found = found || err == nil && d.Name() == imapName+".crt"
		return nil
	})
	if !found {
		t.Errorf("no %s.crt in the volume %s", imapName, c.volume)
	}
}

// containerReadOnly is the control: with ACME storage outside the volume,
// in /tmp, which is world-writable in the image as in distroless, the
// write fails because the root is read-only, and mailfront never listens.
func containerReadOnly(t *testing.T, img *containerImage, pb *pebble) {
	conf, imaps, _ := containerACMEConf(t, pb, nil, "/tmp/acme")
	if fi, err := os.Stat(filepath.Join(img.rootfs, "tmp")); err != nil || fi.Mode().Perm() != 0o777 {
		t.Fatalf("the image's /tmp: %v %v, want mode 0777 (sticky)", fi, err)
	}
	c := startImage(t, img, imageRun{binds: []roBind{{conf, "/etc/mailfront"}}}, false)
	line := c.log.wait(t, 0, regexp.MustCompile(`read-only file system`), nil)
	t.Logf("mailfront logged: %s", line)
	if got := lines(c.log.String(), logMsg("listening", "imaps")); len(got) != 0 {
		t.Errorf("mailfront listened without its storage: %q", got)
	}
	if c, err := net.DialTimeout("tcp", imaps, time.Second); err == nil {
		c.Close()
		t.Errorf("%s accepted a connection", imaps)
	}
	if _, err := os.Stat(filepath.Join(img.rootfs, "tmp", "acme")); err == nil {
		t.Errorf("%s/tmp/acme exists: the image's root was written", img.rootfs)
	}
}

// containerLowPort checks README's claim: the image's user cannot bind a
// port below 1024 (Linux's default ip_unprivileged_port_start, which the
// tests do not change), so the image's ports are above it.
func containerLowPort(t *testing.T, img *containerImage) {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err != nil || strings.TrimSpace(string(b)) != "1024" {
		t.Fatalf("net.ipv4.ip_unprivileged_port_start is %q (%v), want Linux's default 1024", b, err)
	}
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	certFile, keyFile := ca.WriteLeaf(t, dir, "localhost")
	os.Chmod(keyFile, 0o644) // readable by the image's user: only the port is under test
	conf := fmt.Sprintf("tls:\n  certificates:\n    - {cert_file: /etc/mailfront/%s, key_file: /etc/mailfront/%s}\n"+
		"listeners:\n  - {name: imaps, protocol: imap, address: \"127.0.0.1:993\", tls: implicit, backend: \"127.0.0.1:1\"}\n",
		filepath.Base(certFile), filepath.Base(keyFile))
	writeFileMode(t, filepath.Join(dir, "mailfront.yaml"), conf, 0o644)
	r := runInImage(t, img, []roBind{{dir, "/etc/mailfront"}}, append(img.entrypoint, img.cmd...)...)
	if r.code == 0 || !strings.Contains(string(r.stdout)+string(r.stderr), "permission denied") {
		t.Errorf("mailfront as uid %d on port 993: got %s\nwant a failure naming the permission", img.uid, r)
	}
}

// certName is the name certbot obtains a certificate for.
const certName = "mail." + testZone

// groupRecipe is README's group recipe for certbot's files, for the
// image's group.
const groupRecipe = `chgrp -R 65532 /etc/letsencrypt/live /etc/letsencrypt/archive
chmod -R g+rX /etc/letsencrypt/live /etc/letsencrypt/archive
`

// containerCertbot gets a certificate with Debian's certbot from Pebble,
// checks the image's user cannot read it as certbot leaves it, then
// serves it through both recipes: the deploy hook's copies, as
// compose.yaml mounts them with compose-mailfront.yaml, and certbot's
// own files after README's group recipe. A real renewal then reaches both
// mailfronts.
func containerCertbot(t *testing.T, img *containerImage, dv *dovecot, pb *pebble) {
	certbot := tool(t, "certbot", "certbot")
	dir := t.TempDir()
	le := filepath.Join(dir, "letsencrypt")
	certs := filepath.Join(dir, "certs")
	common := []string{"--non-interactive", "--config-dir", le, "--work-dir", filepath.Join(dir, "work"), "--logs-dir", filepath.Join(dir, "logs")}
	env := []string{"REQUESTS_CA_BUNDLE=" + pb.serverCA, "MAILFRONT_CERTS=" + certs}
	run := func(args ...string) result {
		t.Helper()
		r := runClient(t, nil, env, certbot, append(args, common...)...)
		if r.code != 0 {
			t.Fatalf("certbot %s: %s", args[0], r)
		}
		return r
	}
	run("certonly", "--standalone", "--preferred-challenges", "http", "--http-01-address", "127.0.0.1",
		"--http-01-port", strconv.Itoa(pb.httpPort), "--server", pb.dirURL, "--agree-tos",
		"--register-unsafely-without-email", "-d", certName)
	live := filepath.Join(le, "live", certName)
	first := certSerial(t, filepath.Join(live, "cert.pem"))
	checkMode(t, filepath.Join(live, "privkey.pem"), 0o600, 0, 0)

	groupConf := t.TempDir()
	groupIMAPS := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(t, 1)[0]))
	writeFileMode(t, filepath.Join(groupConf, "mailfront.yaml"), fmt.Sprintf(`tls:
  certificates:
    - cert_file: /etc/letsencrypt/live/%[1]s/fullchain.pem
      key_file: /etc/letsencrypt/live/%[1]s/privkey.pem
listeners:
  - {name: imaps, protocol: imap, address: %[2]q, tls: implicit, backend: %[3]q}
log: {format: text, level: debug}
`, certName, groupIMAPS, dv.imapAddr), 0o644)
	groupBinds := []roBind{{le, "/etc/letsencrypt"}, {filepath.Join(groupConf, "mailfront.yaml"), imageConfigPath}}

	// Control: as certbot leaves them, the image's user cannot read them.
	r := runInImage(t, img, groupBinds, append(img.entrypoint, img.cmd...)...)
	if r.code == 0 || !strings.Contains(string(r.stdout)+string(r.stderr), "permission denied") {
		t.Fatalf("mailfront on certbot's files as they are: got %s\nwant a refusal naming the permission", r)
	}

	// The deploy hook, installed and run once by hand as it says.
	hooks := filepath.Join(le, "renewal-hooks", "deploy")
	hook := filepath.Join(hooks, "mailfront")
	if r := runClient(t, nil, nil, "install", "-D", "-m", "0755", repoPath("deploy/compose-certbot-deploy-hook"), hook); r.code != 0 {
		t.Fatalf("install the hook: %s", r)
	}
	if r := runClient(t, nil, append(env, "RENEWED_LINEAGE="+live), hook); r.code != 0 {
		t.Fatalf("the deploy hook, by hand: %s", r)
	}
	checkMode(t, filepath.Join(certs, certName, "privkey.pem"), 0o640, 0, img.gid)
	checkMode(t, filepath.Join(certs, certName), fs.ModeDir|0o750, 0, img.gid)
	compose := composeRun(t, dv, certs)
	hooked := startImage(t, img, compose.run, true)
	hooked.imaps = compose.imaps
	hooked.log.wait(t, 0, logMsg("listening", "imaps"), hooked.exited)
	checkCredentials(t, img, hooked.pid)
	checkServed(t, hooked.front, pb, first)
	checkLogin(t, &front{imaps: compose.imaps, pool: pb.rootPool, serverName: certName})
	if r := runInImage(t, img, compose.run.binds, compose.healthcheck...); r.code != 0 {
		t.Errorf("compose.yaml's healthcheck %q: %s", compose.healthcheck, r)
	}

	// README's group recipe, on certbot's own files.
	recipe := strings.ReplaceAll(groupRecipe, "/etc/letsencrypt", le)
	if r := runClient(t, nil, nil, "/bin/sh", "-ec", recipe); r.code != 0 {
		t.Fatalf("the group recipe: %s", r)
	}
	grouped := startImage(t, img, imageRun{binds: groupBinds}, true)
	grouped.imaps = groupIMAPS
	grouped.log.wait(t, 0, logMsg("listening", "imaps"), grouped.exited)
	checkServed(t, grouped.front, pb, first)

	// A renewal: certbot gives the new key the old one's group, and runs
	// the hook; both mailfronts reload.
	hookMark, groupMark := hooked.log.size(), grouped.log.size()
	run("renew", "--force-renewal", "--no-random-sleep-on-renew")
	second := certSerial(t, filepath.Join(live, "cert.pem"))
	if second.Cmp(first) == 0 {
		t.Fatal("certbot renew kept the certificate")
	}
	if copied := certSerial(t, filepath.Join(certs, certName, "fullchain.pem")); copied.Cmp(second) != 0 {
		t.Errorf("after certbot renew, the deploy hook's copy holds serial %s, want the new %s: the hook did not run", copied, second)
	}
	checkMode(t, filepath.Join(le, "archive", certName, "privkey2.pem"), 0o640, 0, img.gid)
	hooked.log.wait(t, hookMark, logMsg("certificates reloaded", ""), hooked.exited)
	grouped.log.wait(t, groupMark, logMsg("certificates reloaded", ""), grouped.exited)
	checkServed(t, hooked.front, pb, second)
	checkServed(t, grouped.front, pb, second)
}

// imageConfigPath is where the image's command reads its configuration.
const imageConfigPath = "/etc/mailfront/mailfront.yaml"

// logMsg matches a log line with message msg (and listener, if not
// empty), in slog's text or JSON form.
func logMsg(msg, listener string) *regexp.Regexp {
	text := `msg=` + regexp.QuoteMeta(strconv.Quote(msg))
	if !strings.Contains(msg, " ") {
		text = `msg=` + regexp.QuoteMeta(msg)
	}
	json := `"msg":` + regexp.QuoteMeta(strconv.Quote(msg))
	if listener != "" {
		text += ` listener=` + regexp.QuoteMeta(listener) + ` `
		json += `,"listener":` + regexp.QuoteMeta(strconv.Quote(listener))
	}
	return regexp.MustCompile(`(` + text + `|` + json + `)`)
}

// checkLogin logs in through f's IMAPS listener to Dovecot.
func checkLogin(t *testing.T, f *front) {
	t.Helper()
	rc, greeting, err := dialTLS(f, "", f.imaps, 10*time.Second)
	if err != nil {
		t.Fatalf("IMAPS %s: %v", f.imaps, err)
	}
	defer rc.close()
	if !strings.HasPrefix(greeting, "* OK") {
		t.Errorf("IMAPS greeting: got %q, want * OK", greeting)
	}
	if reply, err := rc.imapLogin(testUser, testPassword); err != nil || !strings.HasPrefix(reply, "a1 OK") {
		t.Errorf("IMAPS LOGIN through to Dovecot: got %q (%v), want a1 OK", reply, err)
	}
}

// checkServed polls new handshakes until f serves the certificate with
// serial want, for certName, verified against Pebble's root.
func checkServed(t *testing.T, f *front, pb *pebble, want *big.Int) {
	t.Helper()
	deadline := time.Now().Add(logTimeout)
	for {
		leaf, inter, err := servedLeaf(f, certName)
		if err == nil && leaf.SerialNumber.Cmp(want) == 0 {
			pool := x509.NewCertPool()
			for _, c := range inter {
				pool.AddCert(c)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pb.rootPool, Intermediates: pool, DNSName: certName}); err != nil {
				t.Errorf("certificate served for %s: %v", certName, err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s serves no certificate with serial %s within %v (last: %v %v)", f.imaps, want, logTimeout, leafSerial(leaf), err)
		}
		time.Sleep(pollEvery)
	}
}

func leafSerial(c *x509.Certificate) any {
	if c == nil {
		return nil
	}
	return c.SerialNumber
}

// certSerial is the serial of the certificate in a PEM file.
func certSerial(t *testing.T, file string) *big.Int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", file)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return c.SerialNumber
}

// checkMode checks a file's mode, owner and group.
func checkMode(t *testing.T, file string, mode fs.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: got %v %d:%d, want %v %d:%d", file, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
}

// composeSetup is compose.yaml's mailfront service made runnable here.
type composeSetup struct {
	run         imageRun
	healthcheck []string // the healthcheck's command, CMD form
	imaps       string
}

// composeRun reads compose.yaml's mailfront service: its command, its
// volumes (each mapped to the test's: the configuration, rewritten for
// this machine's ports and Dovecot; the hook's directory, certs) and its
// healthcheck.
func composeRun(t *testing.T, dv *dovecot, certs string) composeSetup {
	t.Helper()
	b, err := os.ReadFile(repoPath("deploy/compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command     []string `yaml:"command"`
			Volumes     []string `yaml:"volumes"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	svc := compose.Services["mailfront"]
	conf, imaps, admin := composeConfig(t, dv)
	hosts := map[string]string{"./compose-mailfront.yaml": conf, "/etc/mailfront/certs": certs}
	var s composeSetup
	s.imaps = imaps
	s.run.args = svc.Command
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		host, ok := hosts[parts[0]]
		if len(parts) != 3 || parts[2] != "ro" || !ok {
			t.Fatalf("deploy/compose.yaml: volume %q: this test maps only read-only %q", v, hosts)
		}
		s.run.binds = append(s.run.binds, roBind{host, parts[1]})
	}
	if test := svc.Healthcheck.Test; len(test) < 2 || test[0] != "CMD" {
		t.Fatalf("deploy/compose.yaml: healthcheck %q: want the CMD form", test)
	}
	// The healthcheck asks the admin endpoint's port in the container:
	// here, where the rewritten configuration put it.
	for _, a := range svc.Healthcheck.Test[1:] {
		s.healthcheck = append(s.healthcheck, strings.Replace(a, "127.0.0.1:9090", admin, 1))
	}
	if slices.Equal(s.healthcheck, svc.Healthcheck.Test[1:]) {
		t.Fatalf("deploy/compose.yaml: healthcheck %q does not ask 127.0.0.1:9090, the admin endpoint", svc.Healthcheck.Test)
	}
	return s
}

// composeConfig rewrites compose-mailfront.yaml for this machine: the
// listeners and the admin endpoint on free loopback ports, the backends
// Dovecot's, the certificate's name certName. The rest is as written.
func composeConfig(t *testing.T, dv *dovecot) (file, imaps, admin string) {
	t.Helper()
	b, err := os.ReadFile(repoPath("deploy/compose-mailfront.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	backend := map[string]string{"imap": dv.imapAddr, "pop3": dv.pop3Addr}
	ls := mapValue(t, root, "listeners")
	ports := freePorts(t, len(ls.Content)+1)
	for i, l := range ls.Content {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]))
		mapValue(t, l, "address").Value = addr
		mapValue(t, l, "backend").Value = backend[mapValue(t, l, "protocol").Value]
		if mapValue(t, l, "name").Value == "imaps" {
			imaps = addr
		}
	}
	admin = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[len(ports)-1]))
	mapValue(t, mapValue(t, root, "admin"), "address").Value = admin
	for _, c := range mapValue(t, mapValue(t, root, "tls"), "certificates").Content {
		for _, k := range []string{"cert_file", "key_file"} {
			v := mapValue(t, c, k)
			v.Value = strings.Replace(v.Value, "/mail.example.com/", "/"+certName+"/", 1)
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "compose-mailfront.yaml")
	writeFileMode(t, file, string(out), 0o644)
	if imaps == "" {
		t.Fatal("deploy/compose-mailfront.yaml: no listener named imaps")
	}
	return file, imaps, admin
}

// mapValue returns the value of key in a YAML mapping.
func mapValue(t *testing.T, m *yaml.Node, key string) *yaml.Node {
	t.Helper()
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	t.Fatalf("deploy/compose-mailfront.yaml: no key %s", key)
	return nil
}
