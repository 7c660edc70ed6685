package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// timedConn notes when the first byte arrived.
type timedConn struct {
	net.Conn
	first time.Time
}

func (c *timedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.first.IsZero() {
		c.first = time.Now()
	}
	return n, err
}

// latencies is one series of samples.
type latencies struct {
	name string
	d    []time.Duration
}

func (l *latencies) pct(p float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(int(p*float64(len(s))), len(s)-1)]
}

// runGreeting makes n sequential connections to each listener and times
// them from the start of the TCP connect.
func runGreeting(env *runEnv, n int) ([]*latencies, error) {
	plainConnect := &latencies{name: "STARTTLS listener: TCP connect"}
	plainGreet := &latencies{name: "STARTTLS listener: connect -> greeting"}
	tcpConnect := &latencies{name: "implicit TLS: TCP connect"}
	firstByte := &latencies{name: "implicit TLS: connect -> first byte (ServerHello)"}
	handshake := &latencies{name: "implicit TLS: connect -> handshake done"}
	greet := &latencies{name: "implicit TLS: connect -> greeting"}
	cfg := env.clientTLS()
	deadline := time.Now().Add(env.limit)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		start := time.Now()
		raw, err := env.dialer.Dial(env.child.starttls)
		if err != nil {
			return nil, fmt.Errorf("starttls listener: %w", err)
		}
		connected := time.Now()
		raw.SetDeadline(start.Add(10 * time.Second))
		m := newIMAP(raw, raw, 512)
		err = m.greeting()
		greeted := time.Now()
		raw.Close()
		if err != nil {
			return nil, fmt.Errorf("starttls listener: %w", err)
		}
		plainConnect.d = append(plainConnect.d, connected.Sub(start))
		plainGreet.d = append(plainGreet.d, greeted.Sub(start))

		start = time.Now()
		raw, err = env.dialer.Dial(env.child.implicit)
		if err != nil {
			return nil, fmt.Errorf("implicit listener: %w", err)
		}
		connected = time.Now()
		raw.SetDeadline(start.Add(10 * time.Second))
		tc := &timedConn{Conn: raw}
		t := tls.Client(tc, cfg)
		err = t.Handshake()
		shaken := time.Now()
		if err == nil {
			err = newIMAP(raw, t, 512).greeting()
		}
		greeted = time.Now()
		raw.Close()
		if err != nil {
			return nil, fmt.Errorf("implicit listener: %w", err)
		}
		tcpConnect.d = append(tcpConnect.d, connected.Sub(start))
		firstByte.d = append(firstByte.d, tc.first.Sub(start))
		handshake.d = append(handshake.d, shaken.Sub(start))
		greet.d = append(greet.d, greeted.Sub(start))
	}
	return []*latencies{plainConnect, plainGreet, tcpConnect, firstByte, handshake, greet}, nil
}

func printGreeting(w io.Writer, ls []*latencies) {
	fmt.Fprintf(w, "\n## greeting: sequential connections, latency from the start of the TCP connect\n")
	for _, l := range ls {
		fmt.Fprintf(w, "  %-52s n=%d  p50 %s  p99 %s  max %s\n", l.name, len(l.d), ms(l.pct(0.50)), ms(l.pct(0.99)), ms(l.pct(1)))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }
