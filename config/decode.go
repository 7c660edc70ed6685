package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decode reads data into c, checking every key and value against the
// schema first, so that each problem names its key path and line in an
// operator's words: an unknown key with the nearest known one, a tab in
// the indentation, a duration without its unit, a list where one value
// belongs. lines receives the line of every key path seen, for the
// validation messages.
func decode(data []byte, c *Config, lines map[string]int) error {
	if n := tabIndented(data); n > 0 {
		return fmt.Errorf("line %d: a tab in the indentation: YAML indents with spaces only; replace the tab with spaces", n)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return errors.New(yamlMessage(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("line %d: a second YAML document (after ---): the configuration is one document", extra.Line)
	}
	if len(doc.Content) == 0 {
		return errors.New("config is empty: see deploy/mailfront.yaml for an example")
	}
	var p problems
	check(&p, lines, "", doc.Content[0], reflect.TypeOf(*c))
	if len(p) > 0 {
		return errors.Join(p...)
	}
	if err := doc.Content[0].Decode(c); err != nil {
		return errors.New(yamlMessage(err)) // the check above should have said it
	}
	return nil
}

// tabIndented is the first line whose indentation holds a tab, or 0.
func tabIndented(data []byte) int {
	for i, line := range bytes.Split(data, []byte("\n")) {
		indent := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 && len(bytes.TrimSpace(line)) > 0 {
			return i + 1
		}
	}
	return 0
}

var durationType = reflect.TypeOf(time.Duration(0))

// check walks node against t, the Go type it decodes into, and adds a
// problem for every key and value that does not fit, with its key path and
// line.
func check(p *problems, lines map[string]int, path string, n *yaml.Node, t reflect.Type) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if path != "" {
		lines[path] = n.Line
	}
	at := func(format string, args ...any) {
		p.add(nonEmpty(path), format+" (line %d)", append(args, n.Line)...)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent: the default
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			at("want a duration such as 30s or 10m, not a %s", kindName(n))
		} else if n.Tag == "!!int" || n.Tag == "!!float" {
			if n.Value == "0" {
				return
			}
			at("%s has no unit: write a duration with its unit, such as %ss (seconds) or %sm (minutes)", n.Value, n.Value, n.Value)
		} else if _, err := time.ParseDuration(n.Value); err != nil {
			at("%q is not a duration: write a number and a unit, such as 30s, 10m or 1h30m", n.Value)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			at("want keys and values (a mapping) here, not a %s", kindName(n))
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				msg := "unknown key"
				if near := nearest(k.Value, fields); near != "" {
					msg += ": did you mean " + near + "?"
				} else {
					msg += ": README.md's configuration reference lists every key"
				}
				p.add(join(path, k.Value), "%s (line %d)", msg, k.Line)
				continue
			}
			check(p, lines, join(path, k.Value), v, f.Type)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			at("want a list (- item, or [a, b]), not a %s", kindName(n))
			return
		}
		for i, item := range n.Content {
			check(p, lines, fmt.Sprintf("%s[%d]", path, i), item, t.Elem())
		}
	case n.Kind != yaml.ScalarNode:
		at("want a single value, not a %s", kindName(n))
	case t.Kind() == reflect.Int:
		if _, err := strconv.Atoi(n.Value); err != nil || n.Tag != "!!int" {
			at("%q is not a whole number", n.Value)
		}
	case t.Kind() == reflect.Bool:
		if n.Tag != "!!bool" {
			at("%q is not true or false", n.Value)
		}
	case t.Kind() == reflect.String:
		// Any scalar reads as text.
	}
}

// yamlFields maps the YAML keys of a struct type to its fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out[name] = f
		}
	}
	return out
}

// nearest is the known key closest to key, if it is close enough to be
// a typo (at most a third of its letters different, and at least one).
func nearest(key string, fields map[string]reflect.StructField) string {
	best, bestD := "", len(key)/3+1
	for name := range fields {
		if d := editDistance(strings.ToLower(key), name); d < bestD || d == bestD && best != "" && name < best {
			best, bestD = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping (keys and values)"
	case yaml.SequenceNode:
		return "list"
	}
	return fmt.Sprintf("value (%q)", n.Value)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func nonEmpty(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

// goTypes finds the Go type names yaml's messages carry.
var goTypes = regexp.MustCompile(` (into|in type) [\w.*\[\]]+`)

// yamlMessage is a YAML syntax error without the library's prefix and Go
// type names: "line 3: mapping values are not allowed in this context".
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	return goTypes.ReplaceAllString(msg, "")
}

// withLines adds the line of each problem's key path, when the file has
// it: "listeners[0].protocol: "smtp" is not imap or pop3 (line 7)".
func withLines(err error, lines map[string]int) error {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return err
	}
	var out []error
	for _, e := range joined.Unwrap() {
		path, _, _ := strings.Cut(e.Error(), ": ")
		if n, ok := lines[path]; ok {
			e = fmt.Errorf("%w (line %d)", e, n)
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}
