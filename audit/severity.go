package audit

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Severity is a finding's verdict, in testssl.sh's words (its JSON says
// them in capitals): critical, high, medium and low are problems, ok is a
// check passed, info is something seen that is neither, and warn is a
// check that could not be run (the server did not answer, the deadline
// ended), as testssl.sh reports its own scanning problems.
type Severity int

// The severities, ordered so that a problem compares above the ones below
// it: Critical > High > Medium > Low. Warn, Info and OK are not problems.
const (
	OK Severity = iota
	Info
	Warn
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{OK: "ok", Info: "info", Warn: "warn", Low: "low", Medium: "medium", High: "high", Critical: "critical"}

func (s Severity) String() string {
	if s < OK || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// problem reports whether s is a problem: low, medium, high or critical.
func (s Severity) problem() bool { return s >= Low }

// ParseSeverity reads a --fail-on value: low, medium, high or critical
// (any case).
func ParseSeverity(s string) (Severity, error) {
	for sev := Low; sev <= Critical; sev++ {
		if strings.EqualFold(s, severityNames[sev]) {
			return sev, nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q: use low, medium, high or critical", s)
}

// MarshalJSON writes the severity's name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a name MarshalJSON wrote.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	for sev, n := range severityNames {
		if n == name {
			*s = Severity(sev)
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", name)
}
