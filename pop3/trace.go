package pop3

import "log/slog"

// LevelTrace is the slog level of protocol traces, below debug. Traces
// carry the command keyword and only arguments that are not secrets.
const LevelTrace = slog.LevelDebug - 4

// trace logs a client command with credentials redacted.
func (ss *session) trace(req request) {
	if !ss.s.Log.Enabled(ss.ctx, LevelTrace) {
		return
	}
	ss.s.Log.Log(ss.ctx, LevelTrace, "command", "name", req.name, "args", redact(req))
}

// redact keeps what is safe to log of a command's arguments: the user name
// of USER and the mechanism of AUTH. SASL responses are never traced.
func redact(req request) string {
	switch {
	case req.rest == "":
		return ""
	case req.name == "USER":
		return req.rest
	case req.name == "AUTH":
		if len(req.args) > 1 {
			return req.args[0] + " [redacted]"
		}
		return req.rest
	case req.name == "PASS" || req.name == "APOP":
		return "[redacted]"
	case len(req.rest) > 64:
		return req.rest[:64] + "..."
	}
	return req.rest
}
