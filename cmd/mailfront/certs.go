package main

import (
	"fmt"
	"log/slog"

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
