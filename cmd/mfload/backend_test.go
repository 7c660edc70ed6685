package main

import (
	"net"
	"testing"
	"time"
)

func TestLiteralSuffix(t *testing.T) {
	tests := []struct {
		in       string
		n        int64
		sync, ok bool
	}{
		{"a LOGIN {4}", 4, true, true},
		{"a APPEND INBOX {1024+}", 1024, false, true},
		{"* 1 FETCH (BODY[]<0> {0}", 0, true, true},
		{"a LOGIN user pass", 0, false, false},
		{"a X {-1}", 0, false, false},
		{"a X {}", 0, false, false},
	}
	for _, tt := range tests {
		n, sync, ok := literalSuffix(tt.in)
		if n != tt.n || sync != tt.sync || ok != tt.ok {
			t.Errorf("literalSuffix(%q) = %d, %v, %v; want %d, %v, %v", tt.in, n, sync, ok, tt.n, tt.sync, tt.ok)
		}
	}
}

// The fake backend speaks enough IMAP for every mode, driven by the same
// client code the modes use, over plain TCP.
func TestBackendDialogue(t *testing.T) {
	b, err := startBackend()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	raw, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	m := newIMAP(raw, raw, 4096)
	if err := m.greeting(); err != nil {
		t.Fatal(err)
	}
	if err := m.cmd("CAPABILITY"); err != nil {
		t.Fatal(err)
	}
	// Credentials as literals, synchronising and not: the backend answers
	// the first with a continuation (skipped as untagged) and reads both.
	if err := m.cmd("LOGIN {4}\r\nuser {6+}\r\nsecret"); err != nil {
		t.Fatal(err)
	}
	if err := m.cmd("NOOP"); err != nil {
		t.Fatal(err)
	}
}

func TestBackendFetchAppendIdle(t *testing.T) {
	b, err := startBackend()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	raw, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	m := newIMAP(raw, raw, 4096)
	if err := m.greeting(); err != nil {
		t.Fatal(err)
	}
	if err := m.login(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{0, 1, 300 << 10} {
		if err := fetchLiteral(m, n); err != nil {
			t.Fatalf("fetch %d: %v", n, err)
		}
		if err := appendLiteral(m, n); err != nil {
			t.Fatalf("append %d: %v", n, err)
		}
	}
	if err := m.idle(); err != nil {
		t.Fatal(err)
	}
	if err := m.done(); err != nil {
		t.Fatal(err)
	}
	if err := m.cmd("LOGOUT"); err != nil {
		t.Fatal(err)
	}
}
