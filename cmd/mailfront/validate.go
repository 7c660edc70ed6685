package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/mailfront/mailfront/config"
)

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/mailfront/mailfront.yaml", "configuration file to check")
	eff := fs.Bool("effective", false, "print every setting's value in force, set or default, as key: value lines")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: mailfront validate --config FILE [--effective]\n\n"+
			"Checks FILE and lists every problem found; exits 1 if there is any.\n"+
			"With --effective it then prints every setting's value in force (set or default)\n"+
			"on standard output, one \"key: value\" a line, with README.md's key paths.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
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
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
	}
	if *eff {
		printEffective(stdout, settings)
		return 0
	}
	fmt.Fprintf(stdout, "%s: configuration is valid\n", *path)
	return 0
}
