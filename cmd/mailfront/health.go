package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// defaultHealthURL is /healthz on the admin address the examples use.
const defaultHealthURL = "http://127.0.0.1:9090/healthz"

// cmdHealth asks a running mailfront's admin endpoint whether it is alive,
// for container health checks in images without a shell or curl
// (distroless): exit 0 on 200, 1 otherwise, with the reason.
func cmdHealth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: mailfront health [--timeout 3s] [URL]\n\n"+
			"Asks a running mailfront's admin endpoint (default "+defaultHealthURL+"; /readyz for readiness)\n"+
			"and exits 0 when it answers 200, 1 otherwise: a health check for containers without curl.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	url := defaultHealthURL
	switch rest := fs.Args(); len(rest) {
	case 0:
	case 1:
		url = rest[0]
	default:
		fmt.Fprintf(stderr, "mailfront health: unexpected arguments %q: give one URL\n", rest)
		return 2
	}
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "mailfront health: %s: %v (is mailfront running, with admin.address there?)\n", url, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "mailfront health: %s: %s: %s\n", url, resp.Status, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s", url, body)
	return 0
}
