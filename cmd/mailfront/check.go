package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/mailfront/mailfront/audit"
)

const checkUsage = `Usage: mailfront check [flags] HOST

Checks a mail server the way an attacker on the network path sees it:
plaintext ports without STARTTLS, logins offered and checked before TLS
(with a random throwaway user and password, never real credentials; the
server may count it as a failed login from this address), PREAUTH,
STARTTLS command injection, TLS versions and suites, the certificate and
ALPN. Before mailfront, it shows what is exposed; after, that it is not.

  mailfront check mail.example.com                 # ports 143, 110, 993, 995
  mailfront check --ports 143,993 10.0.0.5 --sni mail.example.com
  mailfront check --ports 1143/imap,10993/imaps 127.0.0.1
  mailfront check --json mail.example.com          # for CI and monitoring
  mailfront check --smtp mail.example.com          # also 25, 465, 587

Ports other than the standard ones are recognised by what they say (a
plaintext greeting, or a TLS handshake and then a greeting); PORT/KIND
says it (imap, imaps, pop3, pop3s, smtp, submission, smtps).

Exit codes: 0 nothing found, 1 warnings only (findings below --fail-on, or
checks that could not run), 2 a finding at or above --fail-on, 3 the check
could not run (bad arguments, a name that does not resolve, nothing
reachable).

Flags (before or after HOST):
`

// cmdCheck runs the audit of a mail server and prints its report.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ports := fs.String("ports", "", "comma-separated `PORTS`, each optionally PORT/KIND (default 143,110,993,995)")
	sni := fs.String("sni", "", "the `NAME` the certificate must hold, sent as SNI (default HOST)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	smtp := fs.Bool("smtp", false, "also check SMTP: 25, 465 and 587")
	failOn := fs.String("fail-on", "high", "the lowest `SEVERITY` that makes the exit code 2: low, medium, high or critical")
	caFile := fs.String("ca", "", "verify certificates against the CA certificates in PEM `FILE` instead of the system's roots")
	probeGuard := fs.Bool("probe-guard", false, "send a few wrong logins over TLS (once per protocol) and check that the answers slow down; the server counts them against this address")
	timeout := fs.Duration("timeout", audit.DefaultStepTimeout, "how long each network step (connect, answer, handshake) may take")
	deadline := fs.Duration("deadline", audit.DefaultDeadline, "how long the whole check may take")
	fs.Usage = func() {
		fmt.Fprint(stderr, checkUsage)
		fs.PrintDefaults()
	}
	hosts, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return audit.ExitUnknown
	}
	opts, err := checkOptions(hosts, *ports, *sni, *smtp, *failOn, *caFile)
	if err != nil {
		fmt.Fprintf(stderr, "mailfront check: %v\n", err)
		return audit.ExitUnknown
	}
	opts.ProbeGuard, opts.StepTimeout, opts.Deadline = *probeGuard, *timeout, *deadline
	r := audit.Run(context.Background(), opts)
	if *asJSON {
		err = r.WriteJSON(stdout)
	} else {
		err = r.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mailfront check: write the report: %v\n", err)
		return audit.ExitUnknown
	}
	return r.ExitCode()
}

// parseInterspersed parses flags before and after the positional
// arguments (flag stops at the first one) and returns those.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// checkOptions turns the arguments into the audit's options.
func checkOptions(hosts []string, ports, sni string, smtp bool, failOn, caFile string) (audit.Options, error) {
	var opts audit.Options
	if len(hosts) != 1 {
		return opts, fmt.Errorf("give one HOST to check (got %d: %q); see mailfront check --help", len(hosts), hosts)
	}
	opts.Host, opts.Name = hosts[0], sni
	sev, err := audit.ParseSeverity(failOn)
	if err != nil {
		return opts, fmt.Errorf("--fail-on: %w", err)
	}
	opts.FailOn = sev
	opts.Ports = audit.DefaultPorts(false)
	if ports != "" {
		if opts.Ports, err = audit.ParsePorts(ports); err != nil {
			return opts, fmt.Errorf("--ports: %w", err)
		}
	}
	if smtp {
		for _, p := range audit.DefaultPorts(true)[4:] {
			if !slices.ContainsFunc(opts.Ports, func(q audit.Port) bool { return q.Number == p.Number }) {
				opts.Ports = append(opts.Ports, p)
			}
		}
	}
	if caFile != "" {
		if opts.Roots, err = loadRoots(caFile); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// loadRoots reads the PEM certificates of --ca.
func loadRoots(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--ca: read %s: %w", file, errors.Unwrap(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--ca: %s holds no PEM certificate (want -----BEGIN CERTIFICATE-----)", file)
	}
	return pool, nil
}
