//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
)

// bigSize is the size the large message reaches: large enough to cross
// many TLS records and relay buffers.
const bigSize = 5 << 20

// testMessages are the INBOX every Dovecot starts with, in UID order. They
// are stored with CRLF line ends, so IMAP and POP3 serve them byte for byte
// as written:
//  1. a small plain message;
//  2. lines a POP3 server must dot-stuff (".", "..", ".x") and 8-bit UTF-8;
//  3. a 5 MB message.
func testMessages() [][]byte {
	return [][]byte{smallMessage(), dotMessage(), bigMessage()}
}

func smallMessage() []byte {
	return []byte("From: Alice <alice@example.test>\r\n" +
		"To: mfuser@example.test\r\n" +
		"Subject: first message\r\n" +
		"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n" +
		"Message-ID: <first@mailfront.test>\r\n" +
		"\r\n" +
		"Hello from mailfront's integration suite.\r\n")
}

func dotMessage() []byte {
	return []byte("From: Bob <bob@example.test>\r\n" +
		"To: mfuser@example.test\r\n" +
		"Subject: dots and =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
		"Date: Tue, 14 Nov 2023 22:13:21 +0000\r\n" +
		"Message-ID: <dots@mailfront.test>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n" +
		"\r\n" +
		"A line with one dot follows:\r\n" +
		".\r\n" +
		"..two dots\r\n" +
		".leading dot\r\n" +
		"Grüße, ça va? 日本語\r\n")
}

var bigOnce = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	b.WriteString("From: Carol <carol@example.test>\r\n" +
		"To: mfuser@example.test\r\n" +
		"Subject: five megabytes\r\n" +
		"Date: Tue, 14 Nov 2023 22:13:22 +0000\r\n" +
		"Message-ID: <big@mailfront.test>\r\n" +
		"\r\n")
	for i := 0; b.Len() < bigSize; i++ {
		fmt.Fprintf(&b, "line %07d %s\r\n", i, strings.Repeat("0123456789", 7))
	}
	return b.Bytes()
})

// bigMessage is the 5 MB message (the same bytes on every call).
func bigMessage() []byte { return bytes.Clone(bigOnce()) }

// newMessage is a message delivered while a test runs.
func newMessage(subject string) []byte {
	return []byte("From: Dave <dave@example.test>\r\n" +
		"To: mfuser@example.test\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@mailfront.test>\r\n" +
		"\r\n" +
		"Delivered while the test ran.\r\n")
}
