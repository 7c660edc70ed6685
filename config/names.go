package config

import "net"

// nameListeners gives every unnamed listener its name,
// "<protocol>-<tls>-<port>" (imap-implicit-993): a naming rule, so that
// duplicate names are found here and logs always carry one. It is the only
// value Parse fills in; every other zero reaches the package that owns its
// default as zero.
func (c *Config) nameListeners() {
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
