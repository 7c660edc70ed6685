package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/mailfront/mailfront/config"
	"github.com/mailfront/mailfront/tlsconf"
)

// newStore builds the certificate store from the tls section (see
// storeOptions). It contacts no CA; Start does.
func newStore(c config.TLS, log *slog.Logger) (*tlsconf.Store, error) {
	opts, err := storeOptions(c, log)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	store, err := tlsconf.New(opts)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	return store, nil
}

// storageProblem checks that this process can write ACME storage dir,
// creating it when create is set (run), as certmagic will need to. For
// validate (create false), a directory that does not exist yet is no
// error (the systemd unit's StateDirectory creates it), only a warning
// when this user could not create it either. It returns the warning or
// the error, in words that say what to do.
func storageProblem(dir string, create bool) (warning string, problem error) {
	uid := os.Getuid()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && !create {
		parent := dir
		for {
			parent = filepath.Dir(parent)
			if _, err := os.Stat(parent); err == nil || parent == filepath.Dir(parent) {
				break
			}
		}
		if writable(parent) != nil {
			return fmt.Sprintf("tls.acme.storage: %s does not exist, and this user (uid %d) cannot create it in %s: "+
				"the systemd unit's StateDirectory creates it; elsewhere, create it for the user mailfront runs as", dir, uid, parent), nil
		}
		return "", nil
	}
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("tls.acme.storage: cannot create %s as this user (uid %d): %w: create it for this user, "+
				"or set tls.acme.storage to a directory it can write", dir, uid, errors.Unwrap(err))
		}
	}
	if err := writable(dir); err != nil {
		return "", fmt.Errorf("tls.acme.storage: %s cannot be written by this user (uid %d): %w: give it to this user "+
			"(chown), or set tls.acme.storage to a directory it can write", dir, uid, err)
	}
	return "", nil
}

// writable creates and removes a file in dir.
func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".mailfront-write-check-*")
	if err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
