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
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: mailfront validate --config FILE\n\nChecks FILE and lists every problem found; exits 1 if there is any.\n\n")
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
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
	}
	fmt.Fprintf(stdout, "%s: configuration is valid\n", *path)
	return 0
}
