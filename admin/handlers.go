package admin

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// scrapeTimeout bounds one /metrics gathering; a slower one answers 503.
const scrapeTimeout = 10 * time.Second

// newMux routes the endpoints. A "GET" pattern also matches HEAD, and
// net/http answers other methods on a known path with 405 and an Allow
// header, and unknown paths with 404.
func newMux(opts Options, log *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", readyz(opts.Ready))
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
			Timeout:       scrapeTimeout,
		}))
	}
	if opts.Guard != nil {
		mux.HandleFunc("GET /guard", guard(opts.Guard, log))
	}
	return mux
}

// readyz answers 200 "ok" when ready is nil or returns nil, else 503 with
// the error's text.
func readyz(ready func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				text(w, http.StatusServiceUnavailable, err.Error())
				return
			}
		}
		text(w, http.StatusOK, "ok")
	}
}

// guard answers with snapshot's result as indented JSON.
func guard(snapshot func() any, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		body, err := json.MarshalIndent(snapshot(), "", "  ")
		if err != nil {
			log.Error("encode guard snapshot", "err", err)
			text(w, http.StatusInternalServerError, "internal error")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		w.Write(append(body, '\n'))
	}
}

// text writes a one-line plain text answer.
func text(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write([]byte(msg + "\n"))
}
