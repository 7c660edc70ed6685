package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at build time by release builds (scripts/release, the Dockerfile):
//
//	-ldflags "-X main.Version=1.2.3 -X main.Commit=<hash> -X main.BuildDate=<RFC 3339>"
//
// Without them, what Go embeds in every build from a checkout (the module
// version of a `go install ...@v1.2.3`, the VCS revision and commit time)
// is used.
var (
	Version   = ""
	Commit    = ""
	BuildDate = ""
)

// buildInfo is what this binary says about its build.
type buildInfo struct {
	version, commit, date, goVersion string
	modified                         bool // built from a checkout with uncommitted changes
}

// build reads the -ldflags values, falling back to Go's build information.
func build() buildInfo {
	b := buildInfo{version: Version, commit: Commit, date: BuildDate, goVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.commit == "" {
					b.commit = s.Value
				}
			case "vcs.time":
				if b.date == "" {
					b.date = s.Value
				}
			case "vcs.modified":
				b.modified = s.Value == "true" && Commit == ""
			}
		}
	}
	if b.version == "" {
		b.version = "devel"
	}
	if b.commit == "" {
		b.commit = "unknown"
	}
	if b.date == "" {
		b.date = "unknown"
	}
	return b
}

// printVersion is `mailfront version`.
func printVersion(w io.Writer) {
	b := build()
	commit := b.commit
	if b.modified {
		commit += " (with uncommitted changes)"
	}
	fmt.Fprintf(w, "mailfront %s\ncommit: %s\nbuilt: %s\ngo: %s %s/%s\n", b.version, commit, b.date, b.goVersion, runtime.GOOS, runtime.GOARCH)
}
