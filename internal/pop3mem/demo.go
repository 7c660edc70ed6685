package pop3mem

// The demo account. The IMAP demo backend uses the same, so one set of
// credentials works for both protocols.
const (
	DemoUser     = "demo"
	DemoPassword = "demo-password"
)

// DemoMessages are the messages the demo maildrop starts with. The second
// has lines that need dot-stuffing.
func DemoMessages() [][]byte {
	return [][]byte{
		[]byte("From: mailfront <postmaster@mailfront.invalid>\r\n" +
			"To: demo@mailfront.invalid\r\n" +
			"Subject: Welcome to the mailfront demo\r\n" +
			"Message-ID: <welcome@mailfront.invalid>\r\n" +
			"\r\n" +
			"This message came from an in-memory plaintext POP3 server,\r\n" +
			"through mailfront, over TLS.\r\n"),
		[]byte("From: mailfront <postmaster@mailfront.invalid>\r\n" +
			"To: demo@mailfront.invalid\r\n" +
			"Subject: Dots\r\n" +
			"Message-ID: <dots@mailfront.invalid>\r\n" +
			"\r\n" +
			"The next lines start with dots and travel dot-stuffed:\r\n" +
			".\r\n" +
			"..\r\n" +
			".hidden\r\n"),
	}
}

// ListenDemo starts a server with the demo account and messages.
func ListenDemo(addr string) (*Server, error) {
	s, err := Listen(addr, map[string]string{DemoUser: DemoPassword})
	if err != nil {
		return nil, err
	}
	for _, m := range DemoMessages() {
		s.AddMessage(DemoUser, m)
	}
	return s, nil
}
