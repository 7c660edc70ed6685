package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCheckArguments: mistakes in the arguments are exit 3 (the check
// could not run, in the monitoring convention), with what to do.
func TestCheckArguments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"check"}, 3, "give one HOST to check (got 0"},
		{[]string{"check", "a.example", "b.example"}, 3, "give one HOST to check (got 2"},
		{[]string{"check", "--fail-on", "severe", "a.example"}, 3, `--fail-on: unknown severity "severe": use low, medium, high or critical`},
		{[]string{"check", "a.example", "--ports", "143/http"}, 3, `--ports: port "143/http": unknown kind "http"`},
		{[]string{"check", "--ca", filepath.Join(dir, "missing.pem"), "a.example"}, 3, "--ca: read " + filepath.Join(dir, "missing.pem") + ": no such file or directory"},
		{[]string{"check", "--ca", notPEM, "a.example"}, 3, "holds no PEM certificate"},
		{[]string{"check", "--timeout", "soon", "a.example"}, 3, "invalid value"},
		{[]string{"check", "--help"}, 0, "Exit codes: 0 nothing found"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if code := Main(tt.args, &out, &out); code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("mailfront %q: got exit %d and %q, want exit %d and %q", tt.args, code, out.String(), tt.code, tt.want)
		}
	}
}

// TestCheckDemoIsClean: mailfront check against mailfront's own demo
// front, trusting its certificate with --ca, finds nothing: no problem,
// no warning, exit 0, in the table and in the JSON. Without --ca, the
// self-signed certificate is the one critical finding per port.
func TestCheckDemoIsClean(t *testing.T) {
	t.Parallel()
	d, err := startDemo(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.front.srv.Shutdown(context.Background()); d.close() })
	port := func(name string) string { _, p, _ := net.SplitHostPort(d.ports[name]); return p }
	// implicit TLS ports named, STARTTLS ports recognised by their greeting
	ports := port("imaps") + "/imaps," + port("imap") + "," + port("pop3s") + "/pop3s," + port("pop3")

	var out, errOut bytes.Buffer
	code := Main([]string{"check", "--ports", ports, "--ca", d.certFile, "127.0.0.1"}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "summary: 0 critical, 0 high, 0 medium, 0 low, 0 warn") {
		t.Errorf("check with --ca: got exit %d\n%s%s\nwant exit 0 and no problem", code, out.String(), errOut.String())
	}
	for _, p := range []string{port("imap") + "/imap", port("pop3") + "/pop3"} {
		if !strings.Contains(out.String(), p+" ") {
			t.Errorf("the report does not recognise %s:\n%s", p, out.String())
		}
	}

	out.Reset()
	code = Main([]string{"check", "127.0.0.1", "--json", "--ports", ports}, &out, &errOut)
	var js struct {
		ExitCode int `json:"exit_code"`
		Findings []struct {
			Port     int    `json:"port"`
			ID       string `json:"id"`
			Severity string `json:"severity"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(out.Bytes(), &js); err != nil {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
	var critical []string
	for _, f := range js.Findings {
		if f.Severity == "critical" || f.Severity == "high" {
			critical = append(critical, strconv.Itoa(f.Port)+" "+f.ID)
		}
	}
	if code != 2 || js.ExitCode != 2 || len(critical) != 4 || !allAre(critical, " cert-chain") {
		t.Errorf("check without --ca: got exit %d (JSON %d) and %q, want exit 2 and cert-chain on each of the four ports", code, js.ExitCode, critical)
	}
}

func allAre(items []string, suffix string) bool {
	for _, s := range items {
		if !strings.HasSuffix(s, suffix) {
			return false
		}
	}
	return true
}

// TestCheckExposed: a plaintext IMAP server without STARTTLS that checks
// passwords is what Shadowserver reports: critical, exit 2 whatever
// --fail-on, and the throwaway user is said.
func TestCheckExposed(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go legacyIMAP(c)
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	for _, failOn := range []string{"high", "critical"} {
		var out bytes.Buffer
		code := Main([]string{"check", "--fail-on", failOn, "127.0.0.1", "--ports", port + "/imap"}, &out, &out)
		for _, want := range []string{"CRITICAL", "Shadowserver", "throwaway user \"mfcheck-", "may count them as failed logins", "exit 2: a finding at or above " + failOn} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("--fail-on %s: the report lacks %q:\n%s", failOn, want, out.String())
			}
		}
		if code != 2 {
			t.Errorf("--fail-on %s: got exit %d, want 2", failOn, code)
		}
	}
}

// legacyIMAP is a plaintext IMAP server without STARTTLS that checks
// the passwords it is sent.
func legacyIMAP(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	io.WriteString(c, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] legacy ready\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		tag, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch cmd, _, _ := strings.Cut(rest, " "); strings.ToUpper(cmd) {
		case "CAPABILITY":
			io.WriteString(c, "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"+tag+" OK done\r\n")
		case "LOGIN":
			io.WriteString(c, tag+" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
		default:
			io.WriteString(c, tag+" BAD unknown command\r\n")
		}
	}
}
