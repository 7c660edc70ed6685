package acmetest

import (
	"net/http"
	"strings"
)

// Pebble's endpoint paths, unexported in package wfe; the tests check them
// against the directory.
const (
	newOrderPath = "/order-plz"
	finalizePath = "/finalize-order/"
)

// Requests counts the requests that reached the ACME server while it was up.
func (c *CA) Requests() int { return int(c.requests.Load()) }

// Orders counts new-order requests the CA accepted (201 Created).
func (c *CA) Orders() int { return int(c.orders.Load()) }

// Finalized counts finalize requests the CA accepted (200 OK with the
// order "processing"). Pebble issues the certificate right after, in a
// goroutine; with this package's settings that does not fail.
func (c *CA) Finalized() int { return int(c.finalized.Load()) }

// handler counts requests and refuses them while the CA is down.
func (c *CA) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.down.Load() {
			// A connection accepted just before SetDown(true): drop it
			// without a response, as a dead server would.
			panic(http.ErrAbortHandler)
		}
		c.requests.Add(1)
		next.ServeHTTP(&statusWriter{ResponseWriter: w, status: c.counter(r)}, r)
	})
}

// counter returns what to do with r's response status.
func (c *CA) counter(r *http.Request) func(int) {
	switch {
	case r.Method != http.MethodPost:
		return nil
	case r.URL.Path == newOrderPath:
		return func(code int) {
			if code == http.StatusCreated {
				c.orders.Add(1)
			}
		}
	case strings.HasPrefix(r.URL.Path, finalizePath):
		return func(code int) {
			if code == http.StatusOK {
				c.finalized.Add(1)
			}
		}
	}
	return nil
}

// statusWriter calls status with the response code before the client can
// see it, so a counter is up to date once the client has its answer.
type statusWriter struct {
	http.ResponseWriter
	status func(int)
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.wrote = true
		if w.status != nil {
			w.status(code)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
