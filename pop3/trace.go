package pop3

import "log/slog"

// levelTrace is the slog level of protocol traces, below debug. Traces
// carry the command keyword and only arguments that are not secrets.
const levelTrace = slog.LevelDebug - 4

// trace logs a client command with credentials redacted.
func (s *session) trace(cmd *command) {
	if !s.log.Enabled(s.ctx, levelTrace) {
		return
	}
	s.log.Log(s.ctx, levelTrace, "command", "name", cmd.name, "args", redact(cmd), "state", s.state.String())
}

// redact keeps what is safe to log of a command's arguments: the user name
// of USER and the mechanism of AUTH. SASL responses are never traced.
func redact(cmd *command) string {
	switch {
	case cmd.rest == "":
		return ""
	case cmd.name == "USER":
		return cmd.rest
	case cmd.name == "AUTH":
		if len(cmd.args) > 1 {
			return cmd.args[0] + " [redacted]"
		}
		return cmd.rest
	case cmd.name == "PASS" || cmd.name == "APOP":
		return "[redacted]"
	case len(cmd.rest) > 64:
		return cmd.rest[:64] + "..."
	}
	return cmd.rest
}
