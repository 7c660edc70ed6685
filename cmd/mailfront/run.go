package main

import (
	"cmp"
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
	"github.com/mailfront/mailfront/tlsconf"
)

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration file (or give it as the one argument)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: mailfront run [--config] FILE\n\nRuns the proxy until SIGTERM or SIGINT. SIGHUP reloads the certificate files.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !configFile(fs, path, "run", stderr) {
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
	if stderr == os.Stderr { // the process's own log, not a test's
		slog.SetDefault(log) // libraries' log.Printf lines (certmagic has a few) in the same format
	}
	b := build()
	log.Info("starting", "version", b.version, "commit", b.commit, "config", *path)
	for _, w := range cfg.Warnings() {
		log.Warn("configuration", "warning", w)
	}
	sig := signals() // before listening, so an early SIGHUP cannot kill the process
	defer signal.Stop(sig)
	if a := cfg.TLS.ACME; a != nil {
		if _, problem := storageProblem(cmp.Or(a.Storage, defaultACMEStorage), true); problem != nil {
			log.Error("start failed", "error", problem.Error())
			return 1
		}
	}
	store, err := newStore(cfg.TLS, log)
	if err != nil {
		log.Error("start failed", "error", err)
		return 1
	}
	f, err := prepareFront(cfg, store, log)
	if err != nil {
		store.Close()
		log.Error("start failed", "error", err)
		return 1
	}
	tellManager(log, "STATUS=waiting for certificates (the log says which)")
	if stopped, ok := startStore(store, sig, log); !ok || stopped {
		tellManager(log, "STOPPING=1")
		f.stop(context.Background())
		if !ok {
			return 1
		}
		log.Info("stopped")
		return 0
	}
	if err := f.open(); err != nil {
		log.Error("start failed", "error", err)
		return 1
	}
	tellManager(log, fmt.Sprintf("READY=1\nSTATUS=serving on %d listeners", len(cfg.Listeners)))
	return f.wait(sig)
}

// tellManager sends state to systemd (see notify); a failure is logged once
// per call and changes nothing else.
func tellManager(log *slog.Logger, state string) {
	if err := notify(state); err != nil {
		log.Warn("could not tell systemd the service's state (NOTIFY_SOCKET)", "state", state, "error", err.Error())
	}
}

// startStore obtains the ACME certificates before any listener opens,
// which may take long when the CA is unreachable; SIGTERM or SIGINT ends
// the wait (stopped) and SIGHUP reloads the files meanwhile. Under
// systemd the unit's TimeoutStartSec bounds the wait: a start that cannot
// get its certificates fails, visibly, and Restart= tries again (README,
// "Running under systemd"). ok is false when it failed.
func startStore(store *tlsconf.Store, sig <-chan os.Signal, log *slog.Logger) (stopped, ok bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- store.Start(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Error("start failed", "error", err)
				return false, false
			}
			return false, true
		case s := <-sig:
			if s == syscall.SIGHUP {
				reloadStore(store, log)
				continue
			}
			log.Info("shutting down", "signal", s.String())
			cancel()
			<-done
			return true, true
		}
	}
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
			reloadStore(f.store, f.log)
			continue
		}
		f.log.Info("shutting down", "signal", s.String(), "drain", f.drain.String())
		tellManager(f.log, "STOPPING=1\nSTATUS=draining logged-in sessions")
		ctx, cancel := context.WithTimeout(context.Background(), f.drain+10*time.Second)
		done := make(chan error, 1)
		go func() { done <- f.stop(ctx) }()
		var err error
	drain:
		for {
			select {
			case err = <-done:
				break drain
			case s := <-sig:
				if s == syscall.SIGHUP {
					continue
				}
				// A second SIGTERM or SIGINT: the operator will not wait.
				f.log.Info("shutting down now: second signal, the drain ends", "signal", s.String())
				cancel()
			}
		}
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			f.log.Error("shutdown", "error", err)
			return 1
		}
		f.log.Info("stopped")
		return 0
	}
	return 0
}

// stop ends the backend watchers, certificate renewal, the admin endpoint
// and the server (draining relayed sessions until ctx ends).
func (f *front) stop(ctx context.Context) error {
	f.stopWatch()
	f.store.Close()
	if f.admin != nil {
		f.admin.Close()
	}
	return f.srv.Shutdown(ctx)
}

// reloadStore re-reads the certificate files (SIGHUP); the store logs
// what it loaded.
func reloadStore(store *tlsconf.Store, log *slog.Logger) {
	if err := store.Reload(); err != nil {
		log.Error("certificate reload failed; keeping the certificates in service", "error", err)
	}
}
