package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// cellWidth is where the SEEN and WHAT TO DO cells wrap, so that a row
// stays readable in a terminal.
const cellWidth = 52

// WriteText writes the report as a table, one row per finding, grouped
// per port, ending with a summary line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "mailfront check %s", r.Host)
	var about []string
	if r.Address != "" && r.Address != r.Host {
		about = append(about, "address "+r.Address)
	}
	if r.Name != "" {
		about = append(about, "certificate name "+r.Name)
	}
	if len(about) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(about, ", "))
	}
	fmt.Fprintf(&b, ": %d %s in %.1fs, %s\n", len(r.Ports), plural(len(r.Ports), "port", "ports"),
		r.Elapsed.Seconds(), r.Started.UTC().Format("2006-01-02 15:04:05 UTC"))
	if r.Throwaway != "" {
		fmt.Fprintf(&b, "Login probes used the throwaway user %q with a random password; the server may count them as failed logins from this address.\n", r.Throwaway)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "The check could not run: %s\n", r.Error)
	}
	if len(r.Ports) > 0 {
		b.WriteString("\n")
		b.WriteString(r.table())
	}
	fmt.Fprintf(&b, "\nsummary: %s (%s)\n", r.countLine(), r.verdict())
	_, err := io.WriteString(w, b.String())
	return err
}

// table lays the findings out in columns; the last two wrap at cellWidth.
func (r *Report) table() string {
	head := []string{"PORT", "CHECK", "VERDICT", "SEEN", "WHAT TO DO"}
	var groups [][][]string
	for _, p := range r.Ports {
		var rows [][]string
		for _, f := range p.Findings {
			rows = append(rows, []string{portLabel(p.Port, p.Kind), f.ID, strings.ToUpper(f.Severity.String()), f.Seen, f.Fix})
		}
		groups = append(groups, rows)
	}
	widths := make([]int, len(head))
	for i, h := range head {
		widths[i] = len(h)
	}
	for _, rows := range groups {
		for _, row := range rows {
			for i, cell := range row[:3] {
				widths[i] = max(widths[i], len(cell))
			}
		}
	}
	widths[3] = cellWidth
	var b strings.Builder
	writeRow(&b, widths, head)
	for gi, rows := range groups {
		if gi > 0 {
			b.WriteString("\n")
		}
		for _, row := range rows {
			writeRow(&b, widths, row)
		}
	}
	return b.String()
}

// writeRow writes one row, wrapping its last two cells over as many lines
// as they need.
func writeRow(b *strings.Builder, widths []int, row []string) {
	seen, fix := wrap(row[3], cellWidth), wrap(row[4], cellWidth)
	lines := max(len(seen), len(fix), 1)
	for i := range lines {
		cells := []string{"", "", "", at(seen, i), at(fix, i)}
		if i == 0 {
			copy(cells, row[:3])
		}
		var line strings.Builder
		for c, cell := range cells {
			if c == len(cells)-1 {
				line.WriteString(cell)
				break
			}
			line.WriteString(cell)
			line.WriteString(strings.Repeat(" ", widths[c]-len(cell)+2))
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteString("\n")
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return ""
}

// wrap breaks s into lines of at most width bytes at spaces; a word
// longer than width gets a line of its own.
func wrap(s string, width int) []string {
	var lines []string
	var cur string
	for _, word := range strings.Fields(s) {
		switch {
		case cur == "":
			cur = word
		case len(cur)+1+len(word) <= width:
			cur += " " + word
		default:
			lines = append(lines, cur)
			cur = word
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

func portLabel(port int, k Kind) string {
	if k == "" {
		return strconv.Itoa(port)
	}
	return strconv.Itoa(port) + "/" + string(k)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// summaryOrder is the order severities are counted in the summary.
var summaryOrder = []Severity{Critical, High, Medium, Low, Warn, OK, Info}

func (r *Report) countLine() string {
	counts := r.Counts()
	parts := make([]string, len(summaryOrder))
	for i, s := range summaryOrder {
		parts[i] = fmt.Sprintf("%d %s", counts[s], s)
	}
	return strings.Join(parts, ", ")
}

// jsonReport is the JSON form: the findings as a flat list, as
// testssl.sh's JSON has them, with each one's port and service.
type jsonReport struct {
	Host      string     `json:"host"`
	Address   string     `json:"address,omitempty"`
	Name      string     `json:"name,omitempty"`
	Started   string     `json:"started"`
	Seconds   float64    `json:"seconds"`
	Throwaway string     `json:"throwaway_user,omitempty"`
	FailOn    Severity   `json:"fail_on"`
	ExitCode  int        `json:"exit_code"`
	Error     string     `json:"error,omitempty"`
	Summary   jsonCounts `json:"summary"`
	Ports     []jsonPort `json:"ports"`
	Findings  []Finding  `json:"findings"`
}

type jsonCounts struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	Warn     int `json:"warn"`
	OK       int `json:"ok"`
	Info     int `json:"info"`
}

type jsonPort struct {
	Port         int    `json:"port"`
	Service      Kind   `json:"service,omitempty"`
	RecognisedBy string `json:"recognised_by,omitempty"`
	Answered     bool   `json:"answered"`
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	c := r.Counts()
	out := jsonReport{
		Host: r.Host, Address: r.Address, Name: r.Name,
		Started:   r.Started.UTC().Format(time.RFC3339),
		Seconds:   float64(r.Elapsed.Round(time.Millisecond).Milliseconds()) / 1000,
		Throwaway: r.Throwaway, FailOn: r.failOn(), ExitCode: r.ExitCode(), Error: r.Error,
		Summary: jsonCounts{c[Critical], c[High], c[Medium], c[Low], c[Warn], c[OK], c[Info]},
		Ports:   []jsonPort{}, Findings: r.Findings(),
	}
	for _, p := range r.Ports {
		out.Ports = append(out.Ports, jsonPort{p.Port, p.Kind, p.How, p.Answered})
	}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}
