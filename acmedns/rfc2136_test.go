package acmedns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/logtest"
	"github.com/mholt/acmez/v3/acme"
	"github.com/miekg/dns"
)

const challengeName = "_acme-challenge.example.test"

// TestRFC2136PresentWaitCleanUp validates a wildcard and its base name at
// once: two values under one name, each removed on its own.
func TestRFC2136PresentWaitCleanUp(t *testing.T) {
	t.Parallel()
	srv, p := startDNS(t)
	ctx := t.Context()
	wildcard := challenge("example.test", "wildcard-token.thumbprint")
	base := challenge("example.test", "base-token.thumbprint")
	for _, ch := range []struct {
		name string
		fn   func() error
		want []string
	}{
		{"present wildcard", func() error { return p.Present(ctx, wildcard) }, []string{wildcard.DNS01KeyAuthorization()}},
		{"present base", func() error { return p.Present(ctx, base) }, []string{wildcard.DNS01KeyAuthorization(), base.DNS01KeyAuthorization()}},
		{"wait wildcard", func() error { return p.Wait(ctx, wildcard) }, []string{wildcard.DNS01KeyAuthorization(), base.DNS01KeyAuthorization()}},
		{"wait base", func() error { return p.Wait(ctx, base) }, []string{wildcard.DNS01KeyAuthorization(), base.DNS01KeyAuthorization()}},
		{"cleanup wildcard", func() error { return p.CleanUp(ctx, wildcard) }, []string{base.DNS01KeyAuthorization()}},
		{"cleanup base", func() error { return p.CleanUp(ctx, base) }, nil},
	} {
		if err := ch.fn(); err != nil {
			t.Fatalf("%s: %v", ch.name, err)
		}
		if got := srv.TXT(challengeName); !slices.Equal(got, ch.want) {
			t.Fatalf("after %s: got TXT %q, want %q", ch.name, got, ch.want)
		}
	}
	if srv.Updates() != 4 || srv.Rejected() != 0 {
		t.Errorf("server: got %d updates, %d rejected; want 4, 0", srv.Updates(), srv.Rejected())
	}
}

// TestRFC2136CleanUpAfterCancel checks that CleanUp still removes the
// record when acmez calls it with a context that has ended.
func TestRFC2136CleanUpAfterCancel(t *testing.T) {
	t.Parallel()
	srv, p := startDNS(t)
	ch := challenge("example.test", "k.a")
	if err := p.Present(t.Context(), ch); err != nil {
		t.Fatalf("present: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.CleanUp(ctx, ch); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	if got := srv.TXT(challengeName); len(got) != 0 {
		t.Errorf("TXT after cleanup: got %q, want none", got)
	}
}

// TestRFC2136WaitOverTCP checks that Wait retries over TCP when the UDP
// answer is truncated: here, more TXT values than fit in 512 bytes.
func TestRFC2136WaitOverTCP(t *testing.T) {
	t.Parallel()
	srv, p := startDNS(t)
	var last acme.Challenge
	for i := range 16 {
		last = challenge("example.test", fmt.Sprintf("token-%d.thumbprint", i))
		if err := p.Present(t.Context(), last); err != nil {
			t.Fatalf("present %d: %v", i, err)
		}
	}
	if got := len(srv.TXT(challengeName)); got != 16 {
		t.Fatalf("TXT values: got %d, want 16", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := p.Wait(ctx, last); err != nil {
		t.Fatalf("wait for the last value: %v", err)
	}
}

func TestRFC2136Zone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, domain, zone string
		wantName           string // the TXT owner the server holds afterwards
	}{
		{"discovered at the apex", "example.test", "", challengeName},
		{"discovered four labels below", "a.b.c.Mail.example.test", "", "_acme-challenge.a.b.c.mail.example.test"},
		{"explicit", "mail.example.test", "Example.Test", "_acme-challenge.mail.example.test"},
		{"explicit with dot", "mail.example.test", "example.test.", "_acme-challenge.mail.example.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, p := startDNS(t)
			p.Zone = tt.zone
			ch := challenge(tt.domain, "k.a")
			if err := p.Present(t.Context(), ch); err != nil {
				t.Fatalf("present: %v", err)
			}
			if got, want := srv.TXT(tt.wantName), []string{ch.DNS01KeyAuthorization()}; !slices.Equal(got, want) {
				t.Errorf("TXT %s: got %q, want %q", tt.wantName, got, want)
			}
		})
	}
}

// TestRFC2136ZoneOutsideName checks that a configured zone that cannot hold
// the record fails before anything is sent.
func TestRFC2136ZoneOutsideName(t *testing.T) {
	t.Parallel()
	srv, p := startDNS(t)
	p.Zone = "other.test"
	err := p.Present(t.Context(), challenge("mail.example.test", "k.a"))
	if err == nil || !strings.Contains(err.Error(), "zone other.test. does not contain _acme-challenge.mail.example.test.") {
		t.Fatalf("got %v, want an error naming the zone and the record", err)
	}
	if srv.Updates()+srv.Rejected() != 0 {
		t.Errorf("server saw %d updates, %d rejected; want none", srv.Updates(), srv.Rejected())
	}
}

// TestRFC2136Refused proves the happy path depends on the TSIG key: an
// update the server cannot verify is refused, counted and reported with the
// rcode and the TSIG error.
func TestRFC2136Refused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mutate   func(p *RFC2136)
		rcode    int
		tsig     int
		wantText string
	}{
		{"wrong secret", func(p *RFC2136) { p.Secret = newSecret(t) }, dns.RcodeNotAuth, dns.RcodeBadSig, "NOTAUTH (tsig BADSIG)"},
		{"wrong key name", func(p *RFC2136) { p.KeyName = "other-key" }, dns.RcodeNotAuth, dns.RcodeBadKey, "NOTAUTH (tsig BADKEY)"},
		{"other algorithm", func(p *RFC2136) { p.Algorithm = "hmac-sha512" }, dns.RcodeNotAuth, dns.RcodeBadKey, "NOTAUTH (tsig BADKEY)"},
		{"zone below the apex", func(p *RFC2136) { p.Zone = "mail.example.test" }, dns.RcodeNotAuth, 0, "server answered NOTAUTH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, p := startDNS(t)
			tt.mutate(p)
			err := p.Present(t.Context(), challenge("mail.example.test", "k.a"))
			var re *RcodeError
			if !errors.As(err, &re) || re.Rcode != tt.rcode || re.TSIGError != tt.tsig {
				t.Fatalf("got %v, want rcode %s tsig %s", err, dns.RcodeToString[tt.rcode], dns.RcodeToString[tt.tsig])
			}
			if !strings.Contains(err.Error(), tt.wantText) || !strings.Contains(err.Error(), "rfc2136 present _acme-challenge.mail.example.test.") {
				t.Errorf("error %q does not name the step and %q", err, tt.wantText)
			}
			if srv.Rejected() != 1 || srv.Updates() != 0 || len(srv.TXT("_acme-challenge.mail.example.test")) != 0 {
				t.Errorf("server: got %d rejected, %d updates, TXT %q; want 1, 0, none",
					srv.Rejected(), srv.Updates(), srv.TXT("_acme-challenge.mail.example.test"))
			}
		})
	}
}

// TestRFC2136UnsignedReply checks that an update's NOERROR reply must be
// signed: anything on the path could forge an unsigned one.
func TestRFC2136UnsignedReply(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: l, MsgAcceptFunc: func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { w.WriteMsg(new(dns.Msg).SetReply(r)) })}
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	t.Cleanup(func() { srv.Shutdown(); <-done })
	p := &RFC2136{Server: l.Addr().String(), KeyName: keyName, Secret: newSecret(t), Zone: "example.test", Timeout: 2 * time.Second}
	if err := p.Present(t.Context(), challenge("example.test", "k.a")); !errors.Is(err, errUnsigned) {
		t.Fatalf("got %v, want %v", err, errUnsigned)
	}
}

func TestRFC2136UnknownAlgorithm(t *testing.T) {
	t.Parallel()
	srv, p := startDNS(t)
	p.Algorithm = "hmac-md5"
	err := p.Present(t.Context(), challenge("example.test", "k.a"))
	if err == nil || !strings.Contains(err.Error(), `unknown tsig algorithm "hmac-md5"`) {
		t.Fatalf("got %v, want an unknown algorithm error", err)
	}
	if srv.Updates()+srv.Rejected() != 0 {
		t.Errorf("server saw %d updates, %d rejected; want nothing sent", srv.Updates(), srv.Rejected())
	}
}

// TestRFC2136Unresponsive checks that a server that never answers costs one
// Timeout, over TCP (the update) and UDP (zone discovery), not a hang.
func TestRFC2136Unresponsive(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	for _, tt := range []struct{ name, zone string }{
		{"update over tcp", "example.test"},
		{"zone discovery over udp", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, _ := blackhole(t)
			p := &RFC2136{Server: addr, KeyName: keyName, Secret: newSecret(t), Zone: tt.zone, Timeout: timeout}
			start := time.Now()
			err := p.Present(t.Context(), challenge("example.test", "k.a"))
			elapsed := time.Since(start)
			if !isTimeoutErr(err) || !strings.Contains(err.Error(), "no answer within 200ms") {
				t.Fatalf("got %v, want a timeout error", err)
			}
			if elapsed < timeout || elapsed > timeout+time.Second {
				t.Errorf("returned after %s, want about %s", elapsed, timeout)
			}
		})
	}
}

// TestRFC2136Cancel checks that cancelling ctx while waiting for the reply
// ends the exchange at once, long before its Timeout.
func TestRFC2136Cancel(t *testing.T) {
	t.Parallel()
	addr, received := blackhole(t)
	p := &RFC2136{Server: addr, KeyName: keyName, Secret: newSecret(t), Zone: "example.test", Timeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-received
		cancel()
	}()
	start := time.Now()
	err := p.Present(ctx, challenge("example.test", "k.a"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("returned after %s, want at once", elapsed)
	}
}

func TestRFC2136WaitEndsWithContext(t *testing.T) {
	t.Parallel()
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		_, p := startDNS(t)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		err := p.Wait(ctx, challenge("example.test", "never-presented"))
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errNotVisible) {
			t.Fatalf("got %v, want the deadline and the last poll's result", err)
		}
	})
	t.Run("cancel after the first poll", func(t *testing.T) {
		t.Parallel()
		_, p := startDNS(t)
		ctx, cancel := context.WithCancel(t.Context())
		var cancelled time.Time
		p.Log = slog.New(onMessage{p.Log.Handler(), "rfc2136 record not visible", func() {
			cancelled = time.Now()
			cancel()
		}})
		err := p.Wait(ctx, challenge("example.test", "never-presented"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		// Had Wait slept out its poll interval, it would have taken that long.
		if d := time.Since(cancelled); d >= pollInterval {
			t.Errorf("returned %s after the cancel, want at once, not after the poll interval (%s)", d, pollInterval)
		}
	})
}

// TestRFC2136SecretNotLogged runs a success and a failure with debug logs
// and checks that neither logs nor errors carry the secret.
func TestRFC2136SecretNotLogged(t *testing.T) {
	t.Parallel()
	srv, p := startDNS(t)
	logs := logtest.New(t, slog.LevelDebug)
	p.Log = logs.Logger()
	ch := challenge("example.test", "k.a")
	var errs []error
	for _, fn := range []func() error{
		func() error { return p.Present(t.Context(), ch) },
		func() error { return p.Wait(t.Context(), ch) },
		func() error { return p.CleanUp(t.Context(), ch) },
	} {
		if err := fn(); err != nil {
			t.Fatal(err)
		}
	}
	good, wrong := p.Secret, newSecret(t)
	p.Secret = wrong
	errs = append(errs, p.Present(t.Context(), ch))
	p.Secret = good + "!" // not base64
	errs = append(errs, p.Present(t.Context(), ch), p.Check())
	if srv.Rejected() != 1 || logs.Count("rfc2136 record added") == 0 {
		t.Fatalf("test did not run as planned: %d rejected, %d records added", srv.Rejected(), logs.Count("rfc2136 record added"))
	}
	logs.MustNotContain(good, wrong)
	for _, secret := range []string{good, wrong} {
		for _, err := range errs {
			if err == nil || strings.Contains(err.Error(), secret) {
				t.Errorf("error %v is nil or contains the secret", err)
			}
		}
	}
}

func TestRecordName(t *testing.T) {
	t.Parallel()
	tests := []struct{ domain, want string }{
		{"example.test", "_acme-challenge.example.test."},
		{"Mail.Example.TEST", "_acme-challenge.mail.example.test."},
		{"*.example.test", "_acme-challenge.example.test."},
		{"example.test.", "_acme-challenge.example.test."},
	}
	for _, tt := range tests {
		if got := recordName(challenge(tt.domain, "k.a")); got != tt.want {
			t.Errorf("recordName(%q): got %q, want %q", tt.domain, got, tt.want)
		}
	}
}
