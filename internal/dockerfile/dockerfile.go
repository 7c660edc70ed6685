// Package dockerfile reads the repository's Dockerfile for the tests that
// check it as written (package deploy's) and run its build
// (integration's): one reader, so that both see the same instructions.
//
// It reads the subset of the syntax the file uses: comments, continuation
// lines, --flags and FROM ... AS name. It refuses what it does not read (a
// parser directive, a heredoc) rather than misread it. It is not a
// Dockerfile parser for other files, and it builds nothing.
package dockerfile

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Instruction is one instruction: its keyword (upper case), its --flags
// and the rest of the line, continuation lines joined.
type Instruction struct {
	Line  int
	Cmd   string
	Flags []string
	Args  string
}

// Stage is one FROM and the instructions under it.
type Stage struct {
	From, Name   string
	Instructions []Instruction
}

// Find returns the stage's instructions with keyword cmd.
func (s Stage) Find(cmd string) []Instruction {
	var out []Instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// Exec decodes an exec-form (JSON array) argument; the shell form is an
// error.
func (in Instruction) Exec() ([]string, error) {
	var args []string
	if err := json.Unmarshal([]byte(in.Args), &args); err != nil {
		return nil, fmt.Errorf("line %d: %s %s: want the exec form, a JSON array (%v)", in.Line, in.Cmd, in.Args, err)
	}
	return args, nil
}

// directive matches a parser directive (syntax, escape, check).
var directive = regexp.MustCompile(`^#\s*(?i:syntax|escape|check)\s*=`)

// Parse reads a Dockerfile into its stages.
func Parse(data []byte) ([]Stage, error) {
	var stages []Stage
	var logical strings.Builder
	start := 0
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || line == "" {
			if len(stages) == 0 && logical.Len() == 0 && directive.MatchString(line) {
				return nil, fmt.Errorf("line %d: a parser directive (%s), which this reader does not read", i+1, line)
			}
			continue
		}
		if logical.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(line, `\`) {
			logical.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		logical.WriteString(line)
		in := parseInstruction(start, logical.String())
		logical.Reset()
		if strings.Contains(in.Args, "<<") {
			return nil, fmt.Errorf("line %d: a heredoc, which this reader does not read", in.Line)
		}
		if in.Cmd == "FROM" {
			from, name, _ := strings.Cut(in.Args, " AS ")
			stages = append(stages, Stage{From: strings.TrimSpace(from), Name: strings.TrimSpace(name)})
			continue
		}
		if len(stages) == 0 {
			return nil, fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
		}
		s := &stages[len(stages)-1]
		s.Instructions = append(s.Instructions, in)
	}
	return stages, nil
}

func parseInstruction(line int, text string) Instruction {
	cmd, rest, _ := strings.Cut(text, " ")
	in := Instruction{Line: line, Cmd: strings.ToUpper(cmd)}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		flag, more, _ := strings.Cut(rest, " ")
		in.Flags = append(in.Flags, flag)
		rest = strings.TrimSpace(more)
	}
	in.Args = rest
	return in
}
