package dockerfile

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	stages, err := Parse([]byte(`# a comment
FROM docker.io/library/golang:1.26-bookworm AS build
ARG VERSION
RUN --mount=type=cache,target=/root/.cache \
    go build ./cmd/mailfront

from gcr.io/distroless/static-debian12:nonroot
COPY --from=build --chown=65532:65532 /out /
ENTRYPOINT ["/usr/local/bin/mailfront"]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Stage{
		{From: "docker.io/library/golang:1.26-bookworm", Name: "build", Instructions: []Instruction{
			{Line: 3, Cmd: "ARG", Args: "VERSION"},
			{Line: 4, Cmd: "RUN", Flags: []string{"--mount=type=cache,target=/root/.cache"}, Args: "go build ./cmd/mailfront"},
		}},
		{From: "gcr.io/distroless/static-debian12:nonroot", Instructions: []Instruction{
			{Line: 8, Cmd: "COPY", Flags: []string{"--from=build", "--chown=65532:65532"}, Args: "/out /"},
			{Line: 9, Cmd: "ENTRYPOINT", Args: `["/usr/local/bin/mailfront"]`},
		}},
	}
	if !reflect.DeepEqual(stages, want) {
		t.Fatalf("got %+v\nwant %+v", stages, want)
	}
	if got := stages[1].Find("ENTRYPOINT"); len(got) != 1 {
		t.Errorf("Find: got %v", got)
	}
	if args, err := stages[1].Instructions[1].Exec(); err != nil || !reflect.DeepEqual(args, []string{"/usr/local/bin/mailfront"}) {
		t.Errorf("Exec: got %q, %v", args, err)
	}
	if _, err := (Instruction{Cmd: "CMD", Args: "run --config x"}).Exec(); err == nil {
		t.Error("Exec accepted the shell form")
	}
	for in, want := range map[string]string{
		"# syntax=docker/dockerfile:1\nFROM x\n": "a parser directive",
		"FROM x\nRUN <<EOF\nls\nEOF\n":           "a heredoc",
		"RUN ls\nFROM x\n":                       "RUN before the first FROM",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
}
