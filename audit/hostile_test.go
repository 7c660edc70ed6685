package audit

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// startHostile serves every connection with serve until the test ends.
func startHostile(t *testing.T, serve func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { defer c.Close(); serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// silent accepts and says nothing, reading until the client leaves.
func silent(c net.Conn) { io.Copy(io.Discard, c) }

// flood greets with a line that never ends.
func flood(c net.Conn) {
	c.Write([]byte("* OK "))
	chunk := []byte(strings.Repeat("A", 4096))
	for {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

// endlessCaps greets, then answers anything with capability lines forever.
func endlessCaps(c net.Conn) {
	c.Write([]byte("* OK ready\r\n"))
	buf := make([]byte, 512)
	if _, err := c.Read(buf); err != nil {
		return
	}
	for {
		if _, err := c.Write([]byte("* CAPABILITY IMAP4rev1 X\r\n")); err != nil {
			return
		}
	}
}

// drip sends its greeting one byte at a time, never ending the line: a
// per-read deadline would be extended forever, a per-step one is not.
func drip(c net.Conn) {
	for {
		if _, err := c.Write([]byte("*")); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond) // the drip's pace, the behaviour under test
	}
}

// TestHostileServers: servers that never answer, never end a line, never
// end an answer or drip bytes cost each step its timeout and no more, and
// what they did is said in the report.
func TestHostileServers(t *testing.T) {
	t.Parallel()
	const step = 300 * time.Millisecond
	p := newPKI(t)
	tlsSilent := func(c net.Conn) { // TLS, and then not a word
		tc := tls.Server(c, serverTLS(p.good))
		if tc.Handshake() == nil {
			io.Copy(io.Discard, tc)
		}
	}
	servers := []struct {
		name  string
		serve func(net.Conn)
		kind  Kind
		id    string
		seen  string
	}{
		{"silent imap", silent, IMAP, IDService, "no answer within 300ms"},
		{"silent imaps", silent, IMAPS, IDService, "no answer to a TLS handshake: no answer within 300ms"},
		{"flood", flood, IMAP, IDService, "longer than 8192 bytes"},
		{"endless capabilities", endlessCaps, IMAP, IDPlaintextLogin, "no verdict"},
		{"drip", drip, POP3, IDService, "no answer within 300ms"},
		{"TLS without a greeting", tlsSilent, IMAPS, IDService, "TLS works, then no IMAP greeting: no answer within 300ms"},
		{"TLS without a greeting is still checked", tlsSilent, POP3S, IDTLS13, "TLS 1.3 offered"},
	}
	var ports []Port
	for _, s := range servers {
		ports = append(ports, Port{Number: startHostile(t, s.serve), Kind: s.kind})
	}
	begin := time.Now()
	r := Run(context.Background(), Options{Host: "127.0.0.1", Ports: ports, StepTimeout: step, Deadline: 10 * time.Second})
	if took := time.Since(begin); took > 8*step {
		t.Errorf("got a run of %v, want under %v (a few steps)", took, 8*step)
	}
	for i, s := range servers {
		f := verdicts(r, ports[i].Number)[s.id]
		if !strings.Contains(f.Seen, s.seen) {
			t.Errorf("%s: got %s %q, want it to say %q", s.name, s.id, f.Seen, s.seen)
		}
	}
}

// TestDeadline: the whole run ends at its deadline whatever the steps'
// timeouts, and a run where nothing answered could not run (exit 3).
func TestDeadline(t *testing.T) {
	t.Parallel()
	var ports []Port
	for _, k := range []Kind{IMAP, IMAPS, POP3, POP3S} {
		ports = append(ports, Port{Number: startHostile(t, silent), Kind: k})
	}
	const deadline = 700 * time.Millisecond
	begin := time.Now()
	r := Run(context.Background(), Options{Host: "127.0.0.1", Ports: ports, StepTimeout: time.Minute, Deadline: deadline})
	if took := time.Since(begin); took > deadline+500*time.Millisecond {
		t.Errorf("got a run of %v, want about the deadline, %v", took, deadline)
	}
	if got := r.ExitCode(); got != ExitUnknown {
		t.Errorf("got exit %d, want %d: nothing answered", got, ExitUnknown)
	}
}

// TestCannotRun: a name that does not resolve and ports where nothing
// listens give exit 3, with the reason in both renderings.
func TestCannotRun(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	notFound := func(ctx context.Context, host string) ([]string, error) {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	timeout := func(ctx context.Context, host string) ([]string, error) {
		return nil, &net.DNSError{Err: "i/o timeout", Name: host, IsTimeout: true}
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no such name", Options{Host: "mail.invalid", LookupHost: notFound}, "resolve mail.invalid: no such name: check the name, or give an address"},
		{"dns timeout", Options{Host: "mail.invalid", LookupHost: timeout, StepTimeout: time.Second}, "resolve mail.invalid: no answer from DNS within 1s"},
		{"nothing listens", Options{Host: "127.0.0.1", Ports: []Port{{Number: closed}, {Number: closed, Kind: IMAPS}}}, "nothing on 127.0.0.1 answered as IMAP, POP3 or SMTP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := Run(context.Background(), tt.opts)
			if got := r.ExitCode(); got != ExitUnknown || !strings.Contains(r.Error, tt.want) {
				t.Errorf("got exit %d and error %q, want exit %d and %q", got, r.Error, ExitUnknown, tt.want)
			}
			var text, js strings.Builder
			r.WriteText(&text)
			r.WriteJSON(&js)
			if !strings.Contains(text.String(), "could not run: "+r.Error) || !strings.Contains(js.String(), `"exit_code": 3`) {
				t.Errorf("got text %q and JSON %q, want the reason and exit 3", text.String(), js.String())
			}
		})
	}
}

// TestResolvedAddress: a name is checked at the first address it
// resolves to, and kept as the certificate name.
func TestResolvedAddress(t *testing.T) {
	t.Parallel()
	f := startFake(t, script{proto: "imap", login: "NO [AUTHENTICATIONFAILED] failed"})
	lookup := func(ctx context.Context, host string) ([]string, error) {
		if host != "mail.example.test" {
			return nil, errors.New("unexpected name")
		}
		return []string{"127.0.0.1", "192.0.2.1"}, nil
	}
	r := Run(context.Background(), Options{Host: "mail.example.test", Ports: []Port{f.at(IMAP)}, LookupHost: lookup})
	if r.Address != "127.0.0.1" || r.Name != "mail.example.test" || r.Error != "" {
		t.Fatalf("got address %q, name %q, error %q; want 127.0.0.1, mail.example.test, none", r.Address, r.Name, r.Error)
	}
	if got := verdicts(r, f.port)[IDStartTLS].Severity; got != Critical {
		t.Errorf("starttls: got %s, want critical", got)
	}
}

// TestProbeGuard: wrong logins over TLS whose answers never slow down are
// a medium finding; a server whose second answer takes its failure delay
// passes, and the probe stops there. Without the flag, no wrong login is
// sent under TLS.
func TestProbeGuard(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	tests := []struct {
		name   string
		delays []time.Duration
		guard  bool
		want   Severity
		logins int
	}{
		{"no slowdown", nil, true, Medium, guardAttempts},
		{"failure delay", []time.Duration{0, 1100 * time.Millisecond}, true, OK, 2},
		{"off", nil, false, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, script{proto: "imap", implicit: true, tls: serverTLS(p.good, "imap"), capsTLS: []string{"AUTH=PLAIN"}, tlsLoginDelays: tt.delays})
			r := Run(context.Background(), Options{Host: "127.0.0.1", Name: "localhost", Roots: p.ca.Pool(), Ports: []Port{f.at(IMAPS)}, ProbeGuard: tt.guard})
			g, ok := verdicts(r, f.port)[IDGuard]
			if tt.want < 0 && ok || tt.want >= 0 && g.Severity != tt.want {
				t.Errorf("guard: got %v (%q, present %v), want %v", g.Severity, g.Seen, ok, tt.want)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.tlsN != tt.logins {
				t.Errorf("got %d wrong logins under TLS, want %d", f.tlsN, tt.logins)
			}
			// The report names the throwaway user only when it was sent.
			if sent := r.Throwaway != ""; sent != (tt.logins > 0) {
				t.Errorf("got throwaway user %q after %d logins", r.Throwaway, tt.logins)
			}
		})
	}
}
