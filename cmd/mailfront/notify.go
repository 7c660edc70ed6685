package main

import (
	"net"
	"os"
)

// notify tells the service manager about the service's state with
// systemd's sd_notify protocol (sd_notify(3)): newline-separated
// "VARIABLE=value" assignments in one datagram to the unix socket named by
// $NOTIFY_SOCKET ("@" at its start names an abstract socket). Without the
// variable (not started by systemd with Type=notify) it does nothing. A
// failure is returned for the log; it never stops mailfront.
func notify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if name[0] == '@' {
		name = "\x00" + name[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
