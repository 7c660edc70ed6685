package proxy

import (
	"bytes"
	"testing"
)

// FuzzOtherProtocol checks the first-line classifier on arbitrary lines: no
// panic, and what it calls HTTP has a method, a target and an HTTP version,
// what it calls SMTP starts with EHLO or HELO.
func FuzzOtherProtocol(f *testing.F) {
	for _, s := range []string{"GET / HTTP/1.1", "PRI * HTTP/2.0", "EHLO x", "helo", "a1 LOGIN u p",
		"CAPA", "USER GET / HTTP", "GET  HTTP/1.1", "", " ", "POST /a HTTP/"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		switch p := otherProtocol(line); p {
		case "http":
			f := bytes.Split(line, []byte(" "))
			if len(f) < 3 || !isHTTPMethod(f[0]) || !bytes.HasPrefix(f[len(f)-1], []byte("HTTP/")) && !bytes.Contains(line, []byte(" HTTP/")) {
				t.Fatalf("%q called HTTP", line)
			}
		case "smtp":
			if len(line) < 4 || !bytes.EqualFold(line[:4], []byte("EHLO")) && !bytes.EqualFold(line[:4], []byte("HELO")) {
				t.Fatalf("%q called SMTP", line)
			}
		case "":
		default:
			t.Fatalf("%q: unknown protocol %q", line, p)
		}
	})
}
