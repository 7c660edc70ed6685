// Package config is mailfront's configuration file: the YAML schema and
// validation that reports every problem at once with the key path where it
// was found, and what to do about it. Unknown keys are errors.
//
// It holds no defaults: a zero or missing value reaches the package that
// owns the setting as zero, and that package's default applies (each
// field names it). It keeps only checks, such as the RFC minimums of the
// post-login idle limits (RFC 9051 section 5.4, RFC 1939 section 3) and
// the shortest sensible line length (RFC 2683 section 3.2.1.5), and one
// naming rule: an unnamed listener is "<protocol>-<tls>-<port>".
//
// Only the command (cmd/mailfront) imports it; every other package takes
// its own Options. It does not start anything and does not watch the file.
package config
