// Command mailfront is a TLS front for legacy plaintext IMAP and POP3
// servers: "run" loads the configuration, wires it into the packages'
// options, starts the listeners and waits for signals (SIGHUP reloads the
// certificate files; SIGTERM and SIGINT shut down gracefully); "validate"
// checks a configuration and lists every problem, and with --effective
// prints every setting's value in force; "demo" runs in-memory
// backends with mailfront in front of them on loopback; "check" audits a
// mail server (plaintext logins, STARTTLS, TLS, its certificate) before
// and after mailfront is in front of it; "version" prints the build's
// version.
//
// It does not speak any protocol itself: the engine is package proxy, the
// dialogues are packages imap and pop3, the TLS policy is package tlsconf.
// See README.md for the configuration reference.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `mailfront: a TLS front for plaintext IMAP and POP3 servers

Usage:
  mailfront run [--config] FILE      run the proxy
  mailfront validate [--config] FILE check a configuration file and list every problem
      [--effective|--print]          then print every setting's value in force, set or default
  mailfront demo                     run a self-contained demo on loopback
  mailfront health [URL]             ask a running mailfront's /healthz (for container health checks)
  mailfront check [flags] HOST       audit a mail server: plaintext logins, STARTTLS, TLS, certificate
      [--ports 143,10993/imaps] [--sni NAME] [--json] [--smtp] [--fail-on high] [--ca FILE] [--probe-guard]
  mailfront version                  print the version, the commit, the build date and Go's version

Run "mailfront COMMAND --help" for a command's flags.
Signals (run): SIGHUP reloads certificate files (also watched); SIGTERM or SIGINT shuts down gracefully.
`

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs one subcommand and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "health":
		return cmdHealth(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "mailfront version: takes no arguments (got %q)\n", args[1:])
			return 2
		}
		printVersion(stdout)
		return 0
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "mailfront: unknown command %q\n\n%s", args[0], usage)
	return 2
}
