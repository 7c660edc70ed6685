package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"text/template"

	"github.com/mailfront/mailfront/config"
	"github.com/mailfront/mailfront/internal/imapmem"
	"github.com/mailfront/mailfront/internal/pop3mem"
	"github.com/mailfront/mailfront/tlsconf"
)

// demoPorts are tried first so the printed commands stay the same from run
// to run; a busy port falls back to one the kernel picks.
var demoPorts = map[string]int{"imaps": 10993, "imap": 10143, "pop3s": 10995, "pop3": 10110}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "log every session (debug level)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: mailfront demo [-v]\n\nStarts an in-memory IMAP and POP3 backend and mailfront in front of them on\nloopback with a self-signed certificate, prints commands to try, and runs\nuntil Ctrl-C.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	sig := signals()
	defer signal.Stop(sig)
	d, err := startDemo(log)
	if err != nil {
		fmt.Fprintf(stderr, "mailfront demo: %v\n", err)
		return 1
	}
	defer d.close()
	d.printHelp(stdout)
	return d.front.wait(sig)
}

type demo struct {
	dir      string
	imapBE   *imapmem.Server
	pop3BE   *pop3mem.Server
	front    *front
	certFile string
	ports    map[string]string
}

func startDemo(log *slog.Logger) (*demo, error) {
	d := &demo{ports: map[string]string{}}
	var err error
	if d.dir, err = os.MkdirTemp("", "mailfront-demo-"); err != nil {
		return nil, err
	}
	if d.imapBE, err = imapmem.Start("127.0.0.1:0", map[string]string{imapmem.DemoUser: imapmem.DemoPassword}); err != nil {
		d.close()
		return nil, fmt.Errorf("start in-memory imap backend: %w", err)
	}
	if d.pop3BE, err = pop3mem.ListenDemo("127.0.0.1:0"); err != nil {
		d.close()
		return nil, fmt.Errorf("start in-memory pop3 backend: %w", err)
	}
	cert, err := tlsconf.SelfSigned("localhost", "127.0.0.1")
	if err != nil {
		d.close()
		return nil, err
	}
	d.certFile = filepath.Join(d.dir, "demo-cert.pem")
	keyFile := filepath.Join(d.dir, "demo-key.pem")
	if err := writeCert(d.certFile, keyFile, cert.Certificate[0], cert.PrivateKey.(*ecdsa.PrivateKey)); err != nil {
		d.close()
		return nil, err
	}
	for name, port := range demoPorts {
		d.ports[name] = freePort(port)
	}
	cfgFile := filepath.Join(d.dir, "mailfront.yaml")
	if err := d.writeConfig(cfgFile, keyFile); err != nil {
		d.close()
		return nil, err
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		d.close()
		return nil, err
	}
	if d.front, err = startFront(cfg, log); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *demo) close() {
	if d.imapBE != nil {
		d.imapBE.Close()
	}
	if d.pop3BE != nil {
		d.pop3BE.Close()
	}
	os.RemoveAll(d.dir)
}

// freePort returns "127.0.0.1:port" if port is free, else a kernel-chosen one.
func freePort(port int) string {
	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", port), "127.0.0.1:0"} {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			a := ln.Addr().String()
			ln.Close()
			return a
		}
	}
	return "127.0.0.1:0"
}

func writeCert(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal demo key: %w", err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}

var demoConfig = template.Must(template.New("cfg").Parse(`# mailfront demo configuration (written by "mailfront demo")
tls:
  certificates:
    - {cert_file: {{.Cert}}, key_file: {{.Key}}}
listeners:
  - {name: imaps, protocol: imap, address: "{{.P.imaps}}", tls: implicit, backend: "{{.IMAP}}"}
  - {name: imap,  protocol: imap, address: "{{.P.imap}}",  tls: starttls, backend: "{{.IMAP}}"}
  - {name: pop3s, protocol: pop3, address: "{{.P.pop3s}}", tls: implicit, backend: "{{.POP3}}"}
  - {name: pop3,  protocol: pop3, address: "{{.P.pop3}}",  tls: starttls, backend: "{{.POP3}}"}
log: {format: text, level: info}
`))

func (d *demo) writeConfig(path, keyFile string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return demoConfig.Execute(f, map[string]any{
		"Cert": d.certFile, "Key": keyFile, "P": d.ports,
		"IMAP": d.imapBE.Addr, "POP3": d.pop3BE.Addr(),
	})
}

var demoHelp = template.Must(template.New("help").Parse(`
mailfront demo is running. In-memory backends (plaintext, loopback only):
  IMAP {{.IMAP}}    POP3 {{.POP3}}
mailfront in front of them (self-signed certificate {{.Cert}}):
  IMAP implicit TLS  {{.P.imaps}}     IMAP STARTTLS  {{.P.imap}}
  POP3 implicit TLS  {{.P.pop3s}}     POP3 STLS      {{.P.pop3}}
User "{{.User}}", password "{{.Pass}}".

Try, in another terminal:

  # IMAP over TLS: list the mailboxes, then fetch message 1
  curl --cacert {{.Cert}} -u {{.User}}:{{.Pass}} imaps://{{.P.imaps}}/
  curl --cacert {{.Cert}} -u {{.User}}:{{.Pass}} 'imaps://{{.P.imaps}}/INBOX/;UID=1'

  # IMAP with STARTTLS, and POP3 over TLS and with STLS
  curl --ssl-reqd --cacert {{.Cert}} -u {{.User}}:{{.Pass}} imap://{{.P.imap}}/
  curl --cacert {{.Cert}} -u {{.User}}:{{.Pass}} pop3s://{{.P.pop3s}}/1
  curl --ssl-reqd --cacert {{.Cert}} -u {{.User}}:{{.Pass}} pop3://{{.P.pop3}}/

  # a plaintext login is refused, and never reaches the backend
  curl -v -u {{.User}}:{{.Pass}} imap://{{.P.imap}}/
  bash -c 'exec 3<>/dev/tcp/{{.HostPort.imap}}; printf "a LOGIN {{.User}} {{.Pass}}\r\n" >&3; timeout 1 cat <&3'

  # talk IMAP yourself over TLS (type: a LOGIN {{.User}} {{.Pass}})
  openssl s_client -quiet -CAfile {{.Cert}} -connect {{.P.imaps}}
  openssl s_client -quiet -CAfile {{.Cert}} -starttls pop3 -connect {{.P.pop3}}

Press Ctrl-C to stop.
`))

func (d *demo) printHelp(w io.Writer) {
	hp := map[string]string{}
	for k, v := range d.ports {
		host, port, _ := net.SplitHostPort(v)
		hp[k] = host + "/" + port
	}
	demoHelp.Execute(w, map[string]any{
		"Cert": d.certFile, "P": d.ports, "HostPort": hp,
		"IMAP": d.imapBE.Addr, "POP3": d.pop3BE.Addr(),
		"User": pop3mem.DemoUser, "Pass": pop3mem.DemoPassword,
	})
}
