package acmetest

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// pebbleEnv are the variables Pebble reads at construction (va.New,
// wfe.New) that would otherwise make tests slow or random.
var pebbleEnv = []struct{ name, value string }{
	{"PEBBLE_VA_NOSLEEP", "1"},      // default: sleep 0-5s before each validation
	{"PEBBLE_WFE_NONCEREJECT", "0"}, // default: reject 5% of good nonces
	{"PEBBLE_AUTHZREUSE", "0"},      // default: reuse valid authzs 50% of the time
	{"PEBBLE_VA_ALWAYS_VALID", "0"}, // "1" would skip the challenge checks
}

var (
	envOnce sync.Once
	envErr  error
)

// setPebbleEnv sets pebbleEnv once per process.
func setPebbleEnv() error {
	envOnce.Do(func() {
		for _, e := range pebbleEnv {
			if err := os.Setenv(e.name, e.value); err != nil {
				envErr = errors.Join(envErr, fmt.Errorf("set %s: %w", e.name, err))
			}
		}
	})
	return envErr
}

// pebble is Pebble wired as cmd/pebble wires it, minus the listeners.
type pebble struct {
	wfe     wfe.WebFrontEndImpl
	issuers *x509.CertPool
}

// caaIdentity is what Pebble advertises and expects in dns-persist-01
// records; it is cmd/pebble's default.
const caaIdentity = "pebble.letsencrypt.org"

func newPebble(sink *logSink, httpPort, tlsPort int, opts Options) (*pebble, error) {
	logger := sink.logger("pebble: ")
	store := db.NewMemoryStore()
	// One profile, so that orders naming none cannot get a random other one.
	// ECDSA keeps start-up fast; chain length 1 is one intermediate.
	profiles := map[string]ca.Profile{"default": {
		Description:    "acmetest",
		ValidityPeriod: seconds(opts.Validity),
	}}
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	validator := va.New(logger, httpPort, tlsPort, false, opts.Resolver, store)
	for keyID, key := range opts.EAB {
		if err := store.AddExternalAccountKeyByID(keyID, key); err != nil {
			return nil, fmt.Errorf("add eab key %q: %w", keyID, err)
		}
	}
	front := wfe.New(logger, store, validator, authority, []string{caaIdentity}, false, len(opts.EAB) > 0, 0, 0)

	issuers := x509.NewCertPool()
	for i := range authority.GetNumberOfRootCerts() {
		issuers.AddCert(authority.GetRootCert(i).Cert)
	}
	return &pebble{wfe: front, issuers: issuers}, nil
}

// seconds is d rounded up to whole seconds; 0 makes Pebble use its default.
func seconds(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Second - 1) / time.Second)
}
