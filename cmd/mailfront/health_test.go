package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealth: mailfront health exits 0 on a 200 from the admin endpoint,
// 1 with the reason on anything else or nothing there.
func TestHealth(t *testing.T) {
	t.Parallel()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) }))
	defer ok.Close()
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "starting: the mail listeners open once every certificate is in service", http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{ok.URL + "/healthz"}, 0, "ok"},
		{[]string{notReady.URL + "/readyz"}, 1, "503 Service Unavailable: starting"},
		{[]string{closed}, 1, "is mailfront running"},
		{[]string{"a", "b"}, 2, "give one URL"},
	} {
		var out bytes.Buffer
		if code := Main(append([]string{"health"}, tt.args...), &out, &out); code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("mailfront health %q: got exit %d and %q, want exit %d and %q", tt.args, code, out.String(), tt.code, tt.want)
		}
	}
}
