package config

import (
	"net"
	"time"
)

// Defaults. README.md's configuration reference lists them too.
const (
	DefaultLineLength      = 8192
	DefaultLiteralSize     = 8192
	DefaultCommands        = 50
	DefaultInvalidCommands = 5
	DefaultIdle            = 60 * time.Second // RFC 9051 5.4: pre-auth autologout SHOULD be >= 1 minute
	DefaultTotal           = 3 * time.Minute
	DefaultHandshake       = 10 * time.Second
	DefaultMaxConnections  = 20000
	MinIMAPIdle            = 31 * time.Minute // RFC 9051 section 5.4: at least 30 minutes
	MinPOP3Idle            = 10 * time.Minute // RFC 1939 section 3: at least 10 minutes
	DefaultBackendConnect  = 10 * time.Second
	DefaultBackendLogin    = 15 * time.Second
	DefaultKeepalive       = 60 * time.Second
	DefaultDrain           = 30 * time.Second
)

func (c *Config) applyDefaults() {
	if c.TLS.MinVersion == "" {
		c.TLS.MinVersion = "1.2"
	}
	if c.TLS.ACME != nil {
		c.TLS.ACME.applyDefaults()
	}
	l := &c.Limits
	setInt(&l.LineLength, DefaultLineLength)
	setInt(&l.LiteralSize, DefaultLiteralSize)
	setInt(&l.Commands, DefaultCommands)
	setInt(&l.InvalidCommands, DefaultInvalidCommands)
	setInt(&l.MaxConnections, DefaultMaxConnections)
	setDur(&l.Idle, DefaultIdle)
	setDur(&l.Total, DefaultTotal)
	setDur(&l.Handshake, DefaultHandshake)
	setDur(&l.IMAPIdle, MinIMAPIdle)
	setDur(&l.POP3Idle, MinPOP3Idle)
	setDur(&l.BackendConnect, DefaultBackendConnect)
	setDur(&l.BackendLogin, DefaultBackendLogin)
	setDur(&l.Keepalive, DefaultKeepalive)
	setDur(&c.Shutdown.Drain, DefaultDrain)
	setInt(&l.ConnectionsPerNetwork, DefaultConnsPerNetwork)
	setInt(&l.HandshakesPerMinute, DefaultHandshakesPerMinute)
	c.Guard.applyDefaults()
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	for i := range c.Listeners {
		ln := &c.Listeners[i]
		if ln.Name == "" {
			_, port, err := net.SplitHostPort(ln.Address)
			if err != nil {
				port = ln.Address
			}
			ln.Name = ln.Protocol + "-" + ln.TLS + "-" + port
		}
	}
}

// Zero means "default"; negative values are left for Validate to report.
func setInt(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

func setDur(v *time.Duration, d time.Duration) {
	if *v == 0 {
		*v = d
	}
}
