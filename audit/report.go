package audit

import "time"

// Exit codes in the monitoring convention (Nagios, Icinga, Zabbix).
const (
	ExitClean    = 0 // nothing at or above FailOn, no warnings
	ExitWarnings = 1 // problems below FailOn, or checks that could not run
	ExitFailed   = 2 // a finding at or above FailOn
	ExitUnknown  = 3 // the check itself could not run: DNS, nothing reachable, bad arguments
)

// Report is one run's findings, per port in the order the ports were given.
type Report struct {
	Host    string // as given
	Address string // the address checked (Host resolved)
	Name    string // the certificate name checked and sent as SNI
	Started time.Time
	Elapsed time.Duration
	// Throwaway is the random user name the login probes used; empty
	// when none was sent.
	Throwaway string
	FailOn    Severity
	Ports     []PortResult
	// Error says why the check could not run at all (no address, nothing
	// reachable); the exit code is then ExitUnknown.
	Error string
}

// PortResult is one port's findings.
type PortResult struct {
	Port int
	Kind Kind   // what it speaks; empty when nothing recognisable answered
	How  string // how the kind was known: "standard port", "--ports", "its greeting"...
	// Answered says whether anything answered as Kind; a closed port has
	// its Kind (from --ports or the standard port) but did not answer.
	Answered bool
	// Findings in report order.
	Findings []Finding
}

// Counts is how many findings there are of each severity.
func (r *Report) Counts() map[Severity]int {
	n := map[Severity]int{}
	for _, p := range r.Ports {
		for _, f := range p.Findings {
			n[f.Severity]++
		}
	}
	return n
}

// Findings are all the findings, port by port.
func (r *Report) Findings() []Finding {
	var all []Finding
	for _, p := range r.Ports {
		all = append(all, p.Findings...)
	}
	return all
}

// ExitCode maps the report to the monitoring convention: ExitUnknown when
// the check could not run, ExitFailed for a finding at or above FailOn,
// ExitWarnings for problems below it or checks that could not run
// (warn), ExitClean otherwise.
func (r *Report) ExitCode() int {
	if r.Error != "" {
		return ExitUnknown
	}
	failOn := r.failOn()
	code := ExitClean
	for _, f := range r.Findings() {
		switch {
		case f.Severity.problem() && f.Severity >= failOn:
			return ExitFailed
		case f.Severity.problem() || f.Severity == Warn:
			code = ExitWarnings
		}
	}
	return code
}

// verdict is the exit code in words, for the summary line.
func (r *Report) verdict() string {
	switch r.ExitCode() {
	case ExitFailed:
		return "exit 2: a finding at or above " + r.failOn().String()
	case ExitWarnings:
		return "exit 1: warnings below " + r.failOn().String()
	case ExitUnknown:
		return "exit 3: the check could not run"
	}
	return "exit 0: no problem found"
}

func (r *Report) failOn() Severity {
	if r.FailOn == 0 {
		return High
	}
	return r.FailOn
}
