package acmedns

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/dnstest"
	"github.com/mailfront/mailfront/internal/logtest"
	"github.com/mholt/acmez/v3/acme"
)

const (
	zone    = "example.test."
	keyName = "mailfront-key."
)

func newSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// startDNS starts the authoritative test server for example.test with a
// fresh TSIG secret, and returns a provider configured for it.
func startDNS(t *testing.T) (*dnstest.Server, *RFC2136) {
	t.Helper()
	secret := newSecret(t)
	srv := dnstest.Start(t, dnstest.Options{Zone: zone, KeyName: keyName, Secret: secret})
	p := &RFC2136{Server: srv.Addr(), KeyName: keyName, Secret: secret, Timeout: 2 * time.Second, Log: logtest.New(t, slog.LevelDebug).Logger()}
	return srv, p
}

func challenge(domain, keyAuth string) acme.Challenge {
	return acme.Challenge{
		Type:             acme.ChallengeTypeDNS01,
		Identifier:       acme.Identifier{Type: "dns", Value: domain},
		Token:            "token",
		KeyAuthorization: keyAuth,
	}
}

// onMessage is a slog handler that calls fn when a record with message msg
// is logged: a signal for tests.
type onMessage struct {
	slog.Handler
	msg string
	fn  func()
}

func (h onMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.fn()
	}
	return h.Handler.Handle(ctx, r)
}

// blackhole listens on one loopback port for UDP and TCP and never answers:
// datagrams are left unread, and TCP connections are read and held open.
// received gets a value when a TCP connection delivers its first bytes.
func blackhole(t *testing.T) (addr string, received <-chan struct{}) {
	t.Helper()
	l, pc := listenBoth(t)
	ch := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				buf := make([]byte, 512)
				if _, err := c.Read(buf); err == nil {
					select {
					case ch <- struct{}{}:
					default:
					}
				}
				io.Copy(io.Discard, c)
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		pc.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String(), ch
}

// listenBoth listens for TCP and UDP on the same free loopback port.
func listenBoth(t *testing.T) (net.Listener, net.PacketConn) {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", l.Addr().String())
		if err == nil {
			return l, pc
		}
		l.Close()
	}
	t.Fatal("no loopback port free for both udp and tcp")
	return nil, nil
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
