// Package config is mailfront's configuration file: the YAML schema, its
// defaults, and validation that reports every problem at once with the key
// path where it was found. Unknown keys are errors.
//
// Only the command (cmd/mailfront) imports it; every other package takes
// its own Options. It does not start anything and does not watch the file.
//
// Limits default to values chosen from RFC 9051 section 5.4 (IMAP
// autologout timers), RFC 1939 section 3 (POP3 autologout) and RFC 2683
// section 3.2.1.5 (line lengths).
package config
