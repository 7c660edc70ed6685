//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// mailfrontBin is the binary under test: $MAILFRONT_BIN (integration/run
// builds it), or one TestMain builds when that is unset.
var mailfrontBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	mailfrontBin = os.Getenv("MAILFRONT_BIN")
	if mailfrontBin == "" {
		dir, err := os.MkdirTemp("", "mailfront-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "integration:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		mailfrontBin = filepath.Join(dir, "mailfront")
		build := exec.Command("go", "build", "-o", mailfrontBin, "github.com/mailfront/mailfront/cmd/mailfront")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "integration: build mailfront:", err)
			return 1
		}
	}
	if _, err := os.Stat(mailfrontBin); err != nil {
		fmt.Fprintln(os.Stderr, "integration: MAILFRONT_BIN:", err)
		return 1
	}
	return m.Run()
}

// tool returns the path of a client program the suite needs, failing the
// test (not skipping it) when it is missing: a skipped integration check is
// a check that silently stopped running.
func tool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (apt-get install %s, or run integration/run): %v", name, debianPackage, err)
	}
	return path
}

// python is Debian's python3: the system one, not a version manager's shim
// found first on PATH, so the stdlib under test is the distribution's.
func python(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return tool(t, "python3", "python3")
}
