package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"

	"github.com/mailfront/mailfront/config"
)

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration file to check (or give it as the one argument)")
	eff := fs.Bool("effective", false, "print every setting's value in force, set or default, as key: value lines")
	fs.BoolVar(eff, "print", false, "the same as --effective")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: mailfront validate [--config] FILE [--effective|--print]\n\n"+
			"Checks FILE (default "+defaultConfig+") and lists every problem found; exits 1 if there is any.\n"+
			"With --effective (or --print) it then prints every setting's value in force (set or default)\n"+
			"on standard output, one \"key: value\" a line, with README.md's key paths.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !configFile(fs, path, "validate", stderr) {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n%v\n", *path, err)
		return 1
	}
	// The packages' own checks, on the options run would build.
	settings, err := effective(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n%v\n", *path, err)
		return 1
	}
	warnings := cfg.Warnings()
	if a := cfg.TLS.ACME; a != nil {
		warning, problem := storageProblem(cmp.Or(a.Storage, defaultACMEStorage), false)
		if problem != nil {
			fmt.Fprintf(stderr, "%s: invalid configuration:\n%v\n", *path, problem)
			return 1
		}
		if warning != "" {
			warnings = append(warnings, warning)
		}
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
	}
	if *eff {
		printEffective(stdout, settings)
		return 0
	}
	fmt.Fprintf(stdout, "%s: configuration is valid\n", *path)
	return 0
}

// defaultConfig is where the package installs the configuration.
const defaultConfig = "/etc/mailfront/mailfront.yaml"

// configFile takes the configuration file from --config or from the one
// positional argument, and refuses anything else: an extra argument is a
// mistake to point out, never to ignore.
func configFile(fs *flag.FlagSet, path *string, cmd string, stderr io.Writer) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "config" })
	switch rest := fs.Args(); {
	case len(rest) == 0:
		return true
	case len(rest) == 1 && !set:
		*path = rest[0]
		return true
	case len(rest) == 1:
		fmt.Fprintf(stderr, "mailfront %s: two configuration files: --config %s and %s; give one\n", cmd, *path, rest[0])
	default:
		fmt.Fprintf(stderr, "mailfront %s: unexpected arguments %q: give one configuration file, as --config FILE or FILE (flags go before it)\n", cmd, rest)
	}
	return false
}
