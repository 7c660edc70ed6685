package pop3

import (
	"strings"
	"testing"
)

// FuzzParse checks the command parser on arbitrary lines: no panic, and a
// parsed command is a short upper-case keyword with clean arguments that
// reassemble into the line.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"CAPA", "USER alice", "PASS a b c", "AUTH PLAIN AGFsaWNlAHB3", "AUTH LOGIN",
		"STLS", "QUIT", "APOP u 0123456789abcdef0123456789abcdef", "", " ", "\x00", "user\tx", "GET / HTTP/1.1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := parse(line)
		if err != nil {
			if req != nil {
				t.Fatalf("error %v with a command %+v", err, req)
			}
			return
		}
		if req.name == "" || len(req.name) > maxKeyword || req.name != strings.ToUpper(req.name) {
			t.Fatalf("bad keyword %q", req.name)
		}
		if strings.ContainsAny(req.rest, "\x00\r\n") {
			t.Fatalf("rest %q holds NUL, CR or LF", req.rest)
		}
		for _, a := range req.args {
			if a == "" || strings.ContainsAny(a, " \t") {
				t.Fatalf("bad argument %q", a)
			}
		}
		s := string(line)
		if kw, rest, _ := strings.Cut(s, " "); !strings.EqualFold(kw, req.name) || rest != req.rest {
			t.Fatalf("%q parsed as %q + %q", s, req.name, req.rest)
		}
	})
}

// FuzzBackendCaps checks that whatever a backend says in CAPA, only
// allow-listed capabilities with short clean arguments reach a client.
func FuzzBackendCaps(f *testing.F) {
	f.Add("PIPELINING\nTOP\nUIDL\nUSER\nSASL PLAIN LOGIN\nEXPIRE 30 USER\nIMPLEMENTATION x 1.2")
	f.Add("LOGIN-DELAY 900\nSTLS\nUTF8 USER\nX-EVIL \r\nTOP <script>")
	f.Fuzz(func(t *testing.T, text string) {
		c := parseBackendCaps(strings.Split(text, "\n"))
		for _, line := range c.relay {
			kw, _, _ := strings.Cut(line, " ")
			if !relayed[kw] {
				t.Fatalf("relayed %q, not on the allow list", line)
			}
			for i := 0; i < len(line); i++ {
				if b := line[i]; b != ' ' && b != '/' && !isKeywordByte(b) {
					t.Fatalf("relayed %q with byte %q", line, b)
				}
			}
		}
	})
}

// FuzzRespCode checks response-code extraction from backend replies.
func FuzzRespCode(f *testing.F) {
	for _, s := range []string{"-ERR [IN-USE] locked", "-ERR [SYS/TEMP]", "-ERR [", "-ERR []", "-ERR [a]]", "+OK [x]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		code := respCode(line)
		if code != strings.ToUpper(code) || len(code) > 40 || strings.ContainsAny(code, "[] \r\n\x00") {
			t.Fatalf("respCode(%q) = %q", line, code)
		}
	})
}
