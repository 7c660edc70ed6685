package pop3

import (
	"errors"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want command
		err  error
	}{
		{"keyword", "CAPA", command{name: "CAPA"}, nil},
		{"lower case", "capa", command{name: "CAPA"}, nil},
		{"mixed case", "sTlS", command{name: "STLS"}, nil},
		{"one argument", "USER alice", command{name: "USER", rest: "alice", args: []string{"alice"}}, nil},
		{"password keeps spaces", "PASS a b  c ", command{name: "PASS", rest: "a b  c ", args: []string{"a", "b", "c"}}, nil},
		{"two arguments", "AUTH PLAIN AGFsaWNlAHB3", command{name: "AUTH", rest: "PLAIN AGFsaWNlAHB3", args: []string{"PLAIN", "AGFsaWNlAHB3"}}, nil},
		{"extra spaces", "AUTH  PLAIN", command{name: "AUTH", rest: " PLAIN", args: []string{"PLAIN"}}, nil},
		{"trailing space", "CAPA ", command{name: "CAPA", rest: ""}, nil},
		{"tab in argument", "PASS a\tb", command{name: "PASS", rest: "a\tb", args: []string{"a", "b"}}, nil},
		{"utf-8 argument", "USER jürgen", command{name: "USER", rest: "jürgen", args: []string{"jürgen"}}, nil},
		{"hyphen keyword", "X-FOO", command{name: "X-FOO"}, nil},
		{"empty", "", command{}, errSyntax},
		{"leading space", " CAPA", command{}, errSyntax},
		{"keyword too long", "CAPABILITY", command{}, errSyntax},
		{"punctuation keyword", "C@PA", command{}, errSyntax},
		{"nul", "CA\x00PA", command{}, errNUL},
		{"nul in password", "PASS a\x00b", command{}, errNUL},
		{"bare cr", "USER a\rPASS b", command{}, errSyntax},
		{"escape", "USER \x1b[31m", command{}, errSyntax},
		{"del", "USER a\x7f", command{}, errSyntax},
		{"http", "GET / HTTP/1.1", command{name: "GET", rest: "/ HTTP/1.1", args: []string{"/", "HTTP/1.1"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("got error %v, want %v", err, tt.err)
			}
			if got == nil {
				got = &command{}
			}
			if got.name != tt.want.name || got.rest != tt.want.rest || !slices.Equal(got.args, tt.want.args) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
