package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mailfront/mailfront/config"
)

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/mailfront/mailfront.yaml", "configuration file")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: mailfront run --config FILE\n\nRuns the proxy until SIGTERM or SIGINT. SIGHUP reloads the certificate files.\n\n")
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
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mailfront: %v\n", err)
		return 1
	}
	sig := signals() // before listening, so an early SIGHUP cannot kill the process
	defer signal.Stop(sig)
	f, err := startFront(cfg, nil, log)
	if err != nil {
		log.Error("start failed", "error", err)
		return 1
	}
	return f.wait(sig)
}

// newLogger builds the process logger from the log section.
func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.Level, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// signals delivers SIGHUP, SIGINT and SIGTERM.
func signals() chan os.Signal {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	return ch
}

// wait serves until SIGTERM or SIGINT, reloading certificates on SIGHUP, and
// returns the exit code.
func (f *front) wait(sig <-chan os.Signal) int {
	for s := range sig {
		if s == syscall.SIGHUP {
			f.reload()
			continue
		}
		f.log.Info("shutting down", "signal", s.String(), "drain", f.drain.String())
		f.stopWatch()
		ctx, cancel := context.WithTimeout(context.Background(), f.drain+10*time.Second)
		err := f.srv.Shutdown(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			f.log.Error("shutdown", "error", err)
			return 1
		}
		f.log.Info("stopped")
		return 0
	}
	return 0
}

func (f *front) reload() {
	if f.store == nil {
		return
	}
	if err := f.store.Reload(); err != nil {
		f.log.Error("certificate reload failed; keeping the certificates in service", "error", err)
		return
	}
	f.log.Info("certificates reloaded", "names", f.store.Names())
}
