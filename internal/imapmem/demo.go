package imapmem

import (
	"fmt"
	"strings"
)

// DemoMessages returns a few small RFC 5322 messages for the demo user's
// INBOX.
func DemoMessages() [][]byte {
	msgs := []struct{ from, subject, body string }{
		{"Ada <ada@example.test>", "Welcome to mailfront", "This message came through mailfront's TLS front.\r\nThe backend behind it speaks plaintext only."},
		{"Grace <grace@example.test>", "Meeting notes", "Nothing crossed the STARTTLS boundary.\r\nEverything else is in the attachment we did not send."},
		{"Linus <linus@example.test>", "Re: capabilities", "Capabilities follow the TLS state.\r\n"},
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = []byte(fmt.Sprintf("From: %s\r\nTo: %s@example.test\r\nSubject: %s\r\nDate: Mon, 0%d Jan 2024 10:00:00 +0000\r\nMessage-ID: <demo-%d@mailfront.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
			m.from, DemoUser, m.subject, i+1, i+1, strings.TrimRight(m.body, "\r\n")))
	}
	return out
}
