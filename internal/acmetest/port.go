package acmetest

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The ports the VA dials and the ACME server's own port are released at
// times: freePort hands its port to the code under test, which listens on
// it later, and SetDown closes the server's for a while. A port from the
// kernel's ephemeral range could be taken meanwhile by any socket's
// bind(0) or connect(), in this process or another (a loaded machine
// running tests in parallel does that often enough); so these ports come
// from outside that range, where only a socket that asks for the number
// can take them.

// firstPort is the lowest port chosen; below it are the well-known ports
// and the registered services most machines run.
const firstPort = 10000

// ephemeral is the kernel's range for bind(0) and connect(): Linux's
// ip_local_port_range, else the IANA dynamic range (macOS, the BSDs).
func ephemeral() (lo, hi int) {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil {
				return l, h
			}
		}
	}
	return 49152, 65535
}

// listenOutside listens on a free TCP port of host outside the ephemeral
// range, or on one the kernel picks if it finds none (a range that covers
// nearly every port).
func listenOutside(host string) (net.Listener, error) {
	lo, hi := ephemeral()
	for range 200 {
		port := firstPort + rand.IntN(65536-firstPort)
		if lo <= port && port <= hi {
			continue
		}
		if ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago,
// outside the ephemeral range.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := listenOutside("127.0.0.1")
	if err != nil {
		t.Fatalf("acmetest: pick a port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
