package acmedns

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestNormalizeAlgorithm(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", dns.HmacSHA256},
		{"hmac-sha256", dns.HmacSHA256},
		{"HMAC-SHA384.", dns.HmacSHA384},
		{"hmac-sha512", dns.HmacSHA512},
		{"hmac-sha224.", dns.HmacSHA224},
		{"Hmac-Sha1", dns.HmacSHA1},
		{"hmac-md5", ""},
		{"hmac-md5.sig-alg.reg.int.", ""},
		{"sha256", ""},
		{"hmac-sha256..", ""},
		{".", ""},
	}
	for _, tt := range tests {
		got, err := NormalizeAlgorithm(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("NormalizeAlgorithm(%q): got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalizeServer(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"ns1.example.com", "ns1.example.com:53"},
		{"ns1.example.com.", "ns1.example.com.:53"},
		{"ns1.example.com:5353", "ns1.example.com:5353"},
		{"192.0.2.1", "192.0.2.1:53"},
		{"192.0.2.1:053", "192.0.2.1:53"},
		{"2001:db8::1", "[2001:db8::1]:53"},
		{"[2001:db8::1]", "[2001:db8::1]:53"},
		{"[2001:db8::1]:8053", "[2001:db8::1]:8053"},
		{"", ""},
		{":53", ""},
		{"ns1.example.com:", ""},
		{"ns1.example.com:0", ""},
		{"ns1.example.com:65536", ""},
		{"ns1.example.com:+53", ""},
		{"ns1.example.com:domain", ""},
		{"ns1 example.com", ""},
		{"ns1..example.com", ""},
		{"[2001:db8::1", ""},
		{"a:b:c", ""},
	}
	for _, tt := range tests {
		got, err := normalizeServer(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("normalizeServer(%q): got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	valid := func() RFC2136 {
		return RFC2136{Server: "ns1.example.com", KeyName: "mailfront-key", Secret: "c2VjcmV0IGJ5dGVz"}
	}
	tests := []struct {
		name   string
		mutate func(*RFC2136)
		want   []string // substrings of the error; none for valid
	}{
		{"valid", func(*RFC2136) {}, nil},
		{"valid, all set", func(p *RFC2136) {
			p.Algorithm, p.Zone, p.TTL, p.Timeout = "hmac-sha512.", "example.com", time.Minute, time.Second
		}, nil},
		{"no server", func(p *RFC2136) { p.Server = "" }, []string{"rfc2136 server"}},
		{"bad port", func(p *RFC2136) { p.Server = "ns1.example.com:99999" }, []string{"bad port"}},
		{"no key name", func(p *RFC2136) { p.KeyName = "" }, []string{"rfc2136 key name: empty"}},
		{"bad key name", func(p *RFC2136) { p.KeyName = "my key" }, []string{"rfc2136 key name", "not a domain name"}},
		{"no secret", func(p *RFC2136) { p.Secret = "" }, []string{"rfc2136 secret: empty"}},
		{"secret not base64", func(p *RFC2136) { p.Secret = "c2VjcmV0IGJ5dGVz!" }, []string{"rfc2136 secret: not valid base64"}},
		{"unknown algorithm", func(p *RFC2136) { p.Algorithm = "hmac-md5" }, []string{`unknown tsig algorithm "hmac-md5"`}},
		{"bad zone", func(p *RFC2136) { p.Zone = "example..com" }, []string{"rfc2136 zone"}},
		{"negative ttl", func(p *RFC2136) { p.TTL = -time.Second }, []string{"rfc2136 ttl"}},
		{"sub-second ttl", func(p *RFC2136) { p.TTL = time.Millisecond }, []string{"rfc2136 ttl"}},
		{"negative timeout", func(p *RFC2136) { p.Timeout = -1 }, []string{"rfc2136 timeout"}},
		{"everything at once", func(p *RFC2136) { *p = RFC2136{Algorithm: "md5"} },
			[]string{"rfc2136 server", "rfc2136 key name", "rfc2136 secret", "unknown tsig algorithm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid()
			tt.mutate(&p)
			err := p.Check()
			if (err != nil) != (tt.want != nil) {
				t.Fatalf("got %v, want error %v", err, tt.want != nil)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
			if err != nil && p.Secret != "" && strings.Contains(err.Error(), p.Secret) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

// FuzzNormalizeServer checks that what normalizeServer accepts is a valid
// host:port it would accept again unchanged.
func FuzzNormalizeServer(f *testing.F) {
	for _, s := range []string{"ns1.example.com", "192.0.2.1:53", "[2001:db8::1]", "2001:db8::1", "fe80::1%eth0", "a:b", "[::1]:0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := normalizeServer(in)
		if err != nil {
			return
		}
		host, port, err := net.SplitHostPort(out)
		if err != nil || host == "" {
			t.Fatalf("normalizeServer(%q) = %q: not host:port: %v", in, out, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			t.Fatalf("normalizeServer(%q) = %q: bad port", in, out)
		}
		if again, err := normalizeServer(out); again != out || err != nil {
			t.Fatalf("normalizeServer(%q) = %q, but normalizeServer(%q) = %q, %v", in, out, out, again, err)
		}
	})
}

// FuzzNormalizeAlgorithm checks that only the known algorithms come out,
// and that they are fixed points.
func FuzzNormalizeAlgorithm(f *testing.F) {
	for _, s := range []string{"", "hmac-sha256", "HMAC-SHA1.", "hmac-md5", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeAlgorithm(in)
		if err != nil {
			return
		}
		if !slices.Contains(algorithms, out) {
			t.Fatalf("NormalizeAlgorithm(%q) = %q, not a known algorithm", in, out)
		}
		if again, err := NormalizeAlgorithm(out); again != out || err != nil {
			t.Fatalf("NormalizeAlgorithm(%q) = %q, %v; want a fixed point", out, again, err)
		}
	})
}
