package imap

import (
	"slices"
	"strconv"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// RFC 2971 section 3.3 bounds on ID parameters.
const (
	idMaxPairs = 30
	idMaxField = 30
	idMaxValue = 1024
)

// idReplayFields are the RFC 2971 section 3.3 fields mailfront passes on to
// the backend. Anything else, notably Dovecot's x-originating-ip and
// x-forward-* which a backend trusting mailfront's address would believe,
// stays behind: the client must not speak for the proxy.
var idReplayFields = []string{
	"name", "version", "os", "os-version", "vendor", "support-url",
	"address", "date", "command", "arguments", "environment",
}

// peerID are the ID fields that tell a backend who the client is:
// Dovecot's x-originating-ip and -port (the client), x-connected-ip and
// -port (where it connected) and x-session-id (mailfront's name for the
// session, in the backend's logs). A backend believes them only from a
// trusted address (Dovecot: login_trusted_networks); clients' own are
// never passed on (idReplayFields).
func peerID(p *proxy.Peer) []idField {
	s := func(v string) *string { return &v }
	return []idField{
		{"x-originating-ip", s(p.Client.Addr().String())},
		{"x-originating-port", s(strconv.Itoa(int(p.Client.Port())))},
		{"x-connected-ip", s(p.Local.Addr().String())},
		{"x-connected-port", s(strconv.Itoa(int(p.Local.Port())))},
		{"x-session-id", s(p.Session)},
	}
}

// idField is one ID parameter; nil value is NIL.
type idField struct {
	name  string
	value *string
}

// cmdID answers ID (RFC 2971) with mailfront's name and no version, and
// remembers the client's standard fields for the backend.
func cmdID(s *session, cmd *command) error {
	fields, err := parseID(cmd.args)
	if err != nil {
		return err
	}
	s.clientID = fields
	if err := s.conn.WriteString("* ID (\"name\" \"mailfront\")\r\n"); err != nil {
		return err
	}
	return s.ok(cmd.tag, "ID completed")
}

// parseID checks "ID NIL" or "ID (field value ...)" and returns the fields
// worth replaying.
func parseID(args []token) ([]idField, error) {
	if len(args) != 1 {
		return nil, bad("ID takes one argument")
	}
	if args[0].isNIL() {
		return nil, nil
	}
	list := args[0].list
	if args[0].kind != tokList || len(list)%2 != 0 || len(list) > 2*idMaxPairs {
		return nil, bad("Invalid ID parameter list")
	}
	var fields []idField
	for i := 0; i < len(list); i += 2 {
		name, ok := list[i].astring()
		if !ok || list[i].kind == tokAtom || len(name) > idMaxField {
			return nil, bad("Invalid ID field name")
		}
		f := idField{name: name}
		if !list[i+1].isNIL() {
			v, ok := list[i+1].astring()
			if !ok || list[i+1].kind == tokAtom || len(v) > idMaxValue {
				return nil, bad("Invalid ID field value")
			}
			f.value = &v
		}
		if slices.Contains(idReplayFields, strings.ToLower(name)) && (f.value == nil || quotable(*f.value)) {
			fields = append(fields, f)
		}
	}
	return fields, nil
}

// idCommand renders fields as the arguments of an ID command.
func idCommand(fields []idField) string {
	var b strings.Builder
	b.WriteString("ID (")
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quote(f.name))
		b.WriteByte(' ')
		if f.value == nil {
			b.WriteString("NIL")
		} else {
			b.WriteString(quote(*f.value))
		}
	}
	b.WriteByte(')')
	return b.String()
}
