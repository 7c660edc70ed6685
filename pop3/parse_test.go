package pop3

import (
	"errors"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want request
		err  error
	}{
		{"keyword", "CAPA", request{name: "CAPA"}, nil},
		{"lower case", "capa", request{name: "CAPA"}, nil},
		{"mixed case", "sTlS", request{name: "STLS"}, nil},
		{"one argument", "USER alice", request{name: "USER", rest: "alice", args: []string{"alice"}}, nil},
		{"password keeps spaces", "PASS a b  c ", request{name: "PASS", rest: "a b  c ", args: []string{"a", "b", "c"}}, nil},
		{"two arguments", "AUTH PLAIN AGFsaWNlAHB3", request{name: "AUTH", rest: "PLAIN AGFsaWNlAHB3", args: []string{"PLAIN", "AGFsaWNlAHB3"}}, nil},
		{"extra spaces", "AUTH  PLAIN", request{name: "AUTH", rest: " PLAIN", args: []string{"PLAIN"}}, nil},
		{"trailing space", "CAPA ", request{name: "CAPA", rest: ""}, nil},
		{"tab in argument", "PASS a\tb", request{name: "PASS", rest: "a\tb", args: []string{"a", "b"}}, nil},
		{"utf-8 argument", "USER jürgen", request{name: "USER", rest: "jürgen", args: []string{"jürgen"}}, nil},
		{"hyphen keyword", "X-FOO", request{name: "X-FOO"}, nil},
		{"empty", "", request{}, errSyntax},
		{"leading space", " CAPA", request{}, errSyntax},
		{"keyword too long", "CAPABILITY", request{}, errSyntax},
		{"punctuation keyword", "C@PA", request{}, errSyntax},
		{"nul", "CA\x00PA", request{}, errNUL},
		{"nul in password", "PASS a\x00b", request{}, errNUL},
		{"bare cr", "USER a\rPASS b", request{}, errSyntax},
		{"escape", "USER \x1b[31m", request{}, errSyntax},
		{"del", "USER a\x7f", request{}, errSyntax},
		{"http", "GET / HTTP/1.1", request{name: "GET", rest: "/ HTTP/1.1", args: []string{"/", "HTTP/1.1"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("got error %v, want %v", err, tt.err)
			}
			if got.name != tt.want.name || got.rest != tt.want.rest || !slices.Equal(got.args, tt.want.args) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
