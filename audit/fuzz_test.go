package audit

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// greetings are real servers' first lines and answers, the fuzzers' seeds.
var greetings = []string{
	"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.",
	"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED ID LITERAL-] mailfront ready",
	"* OK [CAPABILITY IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE ACL ACL2=UNION STARTTLS ENABLE UTF8=ACCEPT] Courier-IMAP ready. Copyright 1998-2018 Double Precision, Inc.  See COPYING for distribution information.",
	"* OK mail.example.com Cyrus IMAP v2.4.17-Debian-2.4.17+nocaldav-0+deb8u1 server ready",
	"* OK [CAPABILITY IMAP4REV1 I18NLEVEL=1 LITERAL+ SASL-IR LOGIN-REFERRALS STARTTLS] localhost IMAP4rev1 2007f.404 at Sat, 1 Mar 2025 09:30:00 +0000 (UTC)",
	"* PREAUTH [CAPABILITY IMAP4rev1] Logged in as anonymous",
	"* BYE Too many connections from 192.0.2.7",
	"* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI",
	"a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
	"m2 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
	"* BAD [ALERT] Plaintext authentication not allowed without SSL/TLS, but your client did it anyway.",
	"+ Ready for additional command text",
	"+OK Dovecot (Debian) ready.",
	"+OK Qpopper (version 4.1.0) at mail.example.com starting.  <12345.1425201000@mail.example.com>",
	"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
	"-ERR [SYS/TEMP] Temporary problem",
	"+OK",
	"220 mail.example.com ESMTP Postfix (Debian/GNU)",
	"220-mail.example.com ESMTP Exim 4.96 Sat, 01 Mar 2025 09:30:00 +0000",
	"250-AUTH PLAIN LOGIN",
	"250 STARTTLS",
	"554 5.7.1 No SMTP service here",
	"HTTP/1.1 400 Bad Request",
	"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
	"\x16\x03\x01\x02\x00",
	"",
	"*",
	"* OK [",
	"* OK [CAPABILITY",
	"tag OK [] x",
}

// FuzzIMAPLine: the IMAP line parser never panics, and what it returns
// comes from the line.
func FuzzIMAPLine(f *testing.F) {
	for _, g := range greetings {
		f.Add(g)
	}
	f.Fuzz(func(t *testing.T, line string) {
		l := parseIMAPLine(line)
		if !strings.Contains(line, l.Tag) || !strings.Contains(line, l.Text) || !strings.Contains(line, l.Rest) {
			t.Errorf("parseIMAPLine(%q) = %+v: parts not from the line", line, l)
		}
		for _, c := range l.caps() {
			if c == "" || strings.ContainsAny(c, " \t") || strings.ToUpper(c) != c {
				t.Errorf("parseIMAPLine(%q).caps() has %q: want upper-case words", line, c)
			}
		}
	})
}

// FuzzPOP3Line: a status line is +OK or -ERR, and nothing else is.
func FuzzPOP3Line(f *testing.F) {
	for _, g := range greetings {
		f.Add(g)
	}
	f.Fuzz(func(t *testing.T, line string) {
		l := parsePOP3Line(line)
		u := strings.ToUpper(line)
		if l.Valid && !strings.HasPrefix(u, "+OK") && !strings.HasPrefix(u, "-ERR") {
			t.Errorf("parsePOP3Line(%q) valid, want only +OK or -ERR lines valid", line)
		}
		if l.OK && !l.Valid {
			t.Errorf("parsePOP3Line(%q): OK but not valid", line)
		}
	})
}

// FuzzSMTPLine: a reply line has a code from 200 to 599.
func FuzzSMTPLine(f *testing.F) {
	for _, g := range greetings {
		f.Add(g)
	}
	f.Fuzz(func(t *testing.T, line string) {
		l := parseSMTPLine(line)
		if l.Valid && (l.Code < 200 || l.Code > 599 || strings.Trim(line[:3], "0123456789") != "") {
			t.Errorf("parseSMTPLine(%q) = %+v", line, l)
		}
	})
}

// FuzzSoftware: a version found is in the text and is no IPv4 address.
func FuzzSoftware(f *testing.F) {
	for _, g := range greetings {
		f.Add(g)
	}
	f.Fuzz(func(t *testing.T, text string) {
		_, v := software(text)
		if v != "" && (!strings.Contains(text, v) || ipv4RE.MatchString(v)) {
			t.Errorf("software(%q) version %q", text, v)
		}
		if q := quote(text); !utf8.ValidString(q) || strings.ContainsAny(q[1:len(q)-1], "\r\n\x00") {
			t.Errorf("quote(%q) = %q: want valid UTF-8 without control characters", text, q)
		}
	})
}

// FuzzServerAnswers runs the whole check against a server that answers
// every connection with the fuzzer's bytes and closes: whatever it says,
// the check ends in bounded time without a panic, and says something
// about every port.
func FuzzServerAnswers(f *testing.F) {
	for _, g := range greetings {
		f.Add([]byte(g + "\r\n"))
	}
	f.Add([]byte("* OK hi\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\nc1 OK done\r\nm2 OK yes\r\nm1 OK go\r\n"))
	f.Add([]byte("+OK hi\r\n+OK caps\r\nSTLS\r\nUSER\r\n.\r\n+OK\r\n+OK\r\n"))
	f.Add([]byte("220 hi\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n"))
	f.Add([]byte(strings.Repeat("x", 3*maxLine)))
	f.Fuzz(func(t *testing.T, answer []byte) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write(answer)
				c.Close()
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		var ports []Port
		for _, k := range []Kind{IMAP, POP3, Submission, IMAPS} {
			ports = append(ports, Port{Number: port, Kind: k})
		}
		begin := time.Now()
		r := Run(context.Background(), Options{Host: "127.0.0.1", Ports: ports, StepTimeout: 200 * time.Millisecond, Deadline: 2 * time.Second})
		if time.Since(begin) > 3*time.Second {
			t.Errorf("the check took %v", time.Since(begin))
		}
		for _, p := range r.Ports {
			if len(p.Findings) == 0 {
				t.Errorf("port %d/%s: no finding for answer %q", p.Port, p.Kind, answer)
			}
		}
	})
}
