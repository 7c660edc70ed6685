package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// RelayMode chooses how a logged-in session's bytes are moved.
type RelayMode int

const (
	// RelayOptimized is the default: quiet directions park their sockets
	// in a shared epoll set (Linux) instead of holding a goroutine, TLS
	// records are read ahead and written in batches, and crypto/tls's
	// empty input buffers are released while a session is quiet (when the
	// self-test at start passed; see tlsbuf.go).
	RelayOptimized RelayMode = iota
	// RelayStandard is the plain path and the reference the optimized one
	// is tested against: crypto/tls directly over the socket, one goroutine
	// and one buffer per direction for the session's life, no parking and
	// no buffer release.
	RelayStandard
)

func (m RelayMode) String() string {
	if m == RelayStandard {
		return "standard"
	}
	return "optimized"
}

// Listener is one listening socket and what to do with its connections.
type Listener struct {
	Name     string // unique, for logs and metrics
	Protocol string // "imap" or "pop3", for logs and metrics
	Address  string
	Mode     TLSMode
	TLS      *tls.Config
	Handler  Handler // owns its backend
	Limits   Limits
	// ProxyProtocol names the load balancers whose connections start
	// with a PROXY header; the zero value trusts nobody.
	ProxyProtocol ProxyProtocol
	MaxConns      int           // per-listener cap; 0 means none
	Keepalive     time.Duration // TCP keepalive period (default DefaultKeepalive; negative: off)
	// PlaintextRefusal replaces the protocol handler's text refusing a
	// login before TLS on a STARTTLS listener; "" keeps the handler's.
	PlaintextRefusal string
	// Refuse says the protocol's goodbye to a client the gate refuses on a
	// STARTTLS listener (implicit TLS listeners close without a word);
	// nil closes without a word there too.
	Refuse func(c *Conn)

	ln    net.Listener
	conns atomic.Int64
	// tuned: ln is our own TCP listener, whose accepted connections already
	// have TCP_NODELAY (Go's default) and the keepalive configuration, so
	// serve need not set them again (each setsockopt costs a system call).
	tuned bool
}

// Addr is the bound address, once the server has started.
func (l *Listener) Addr() net.Addr {
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// Server accepts connections on its listeners, runs each through its
// protocol handler and relays the logged-in ones.
type Server struct {
	Listeners []*Listener
	Log       *slog.Logger
	MaxConns  int           // across all listeners (default DefaultMaxConns; negative: no cap)
	Drain     time.Duration // how long relayed sessions get at shutdown (default DefaultDrain; negative: none)
	Relay     RelayMode     // how logged-in sessions are relayed (default RelayOptimized)
	Gate      Gate          // access control and the guard; nil admits all
	Observer  Observer      // metrics; nil observes nothing
	// Listen replaces net.Listen, for tests.
	Listen func(network, address string) (net.Listener, error)

	// tlsSelfTest replaces the TLS buffer release's self-test, for tests.
	tlsSelfTest func() error
	relayOpts   relayOptions

	conns      atomic.Int64
	nextID     atomic.Uint64
	wg         sync.WaitGroup
	preCtx     context.Context
	preCancel  context.CancelFunc
	relayCtx   context.Context
	relayStop  context.CancelFunc
	acceptWG   sync.WaitGroup
	started    bool
	shutdownMu sync.Mutex
	handoff    chan accepted // to a worker waiting for its next connection
}

// accepted is a connection on its way to a worker.
type accepted struct {
	l       *Listener
	c       net.Conn
	client  netip.AddrPort // the peer, or the client a PROXY header named
	addr    netip.Addr     // client's address, for the gate
	via     netip.AddrPort // the balancer that sent a PROXY header naming a client
	local   netip.AddrPort // where the client connected, from a PROXY header
	release func()         // the gate's, or nil
	refused bool           // refused by the gate: say goodbye and close
	// proxied: from a trusted balancer, so the connection starts with a
	// PROXY header, read (and the gate asked) on the worker.
	proxied bool
	// balancer: the header said the connection is the balancer's own
	// (LOCAL, UNKNOWN, or its own address): a health check, most likely.
	balancer bool
}

// workerIdle is how long a worker that has finished a connection's
// pre-login phase waits for the next connection before it exits. A TLS
// handshake grows a goroutine's stack from 2 KiB to some 32 KiB, and the
// runtime grows a stack by copying it, each size twice the last: a worker
// that serves the next connection on the stack it already has saves that
// work (about 60 µs of the 320 µs a full handshake costs on the machine the
// README's figures come from). Idle workers hold their stacks only for this
// long, and only as many as connections arrived at once.
const workerIdle = 2 * time.Second

// Start binds every listener (reporting all failures at once) and starts
// accepting.
func (s *Server) Start() error {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	s.MaxConns = EffectiveMaxConns(s.MaxConns)
	s.Drain = EffectiveDrain(s.Drain)
	var errs []error
	for _, l := range s.Listeners {
		ln, err := s.listen(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("listen %s (%s): %w%s", l.Address, l.Name, err, bindHint(l.Address, err)))
			continue
		}
		l.ln = ln
	}
	if err := errors.Join(errs...); err != nil {
		for _, l := range s.Listeners {
			if l.ln != nil {
				l.ln.Close()
			}
		}
		return err
	}
	s.relayOpts = s.relayOptions()
	s.handoff = make(chan accepted)
	s.preCtx, s.preCancel = context.WithCancel(context.Background())
	s.relayCtx, s.relayStop = context.WithCancel(context.Background())
	s.started = true
	for _, l := range s.Listeners {
		s.acceptWG.Add(1)
		go s.accept(l)
		s.Log.Info("listening", "listener", l.Name, "protocol", l.Protocol, "address", l.Addr().String(), "tls", l.Mode.String(), "relay", s.Relay.String())
	}
	return nil
}

// relayOptions decides the relay's path before the first connection: the
// optimized path releases crypto/tls's buffers only when the release's
// self-test passes on this build (see tlsbuf.go).
func (s *Server) relayOptions() relayOptions {
	opts := relayOptions{mode: s.Relay}
	if s.Relay == RelayStandard {
		return opts
	}
	test := s.tlsSelfTest
	if test == nil {
		test = func() error { return tlsReleaseSelfTest(releaseTLSBuffers, selfTestTimeout) }
	}
	if err := test(); err != nil {
		s.Log.Warn("relaying without releasing crypto/tls buffers: the release failed its self-test; "+
			"idle sessions will hold more memory (please report this with your Go version)",
			"shortcut", ShortcutTLSBufferRelease, "error", err.Error())
		if s.Observer != nil {
			s.Observer.SelfTestFailed(ShortcutTLSBufferRelease)
		}
		return opts
	}
	opts.releaseTLS = true
	return opts
}

// ShortcutTLSBufferRelease names the release of crypto/tls's buffers in
// logs and metrics (Observer.SelfTestFailed).
const ShortcutTLSBufferRelease = "tls-buffer-release"

// listen binds l: through s.Listen when set, else with the keepalive
// configuration set up at the listener (see listenConfig).
func (s *Server) listen(l *Listener) (net.Listener, error) {
	if s.Listen != nil {
		return s.Listen("tcp", l.Address)
	}
	lc := listenConfig(l.Keepalive)
	ln, err := lc.Listen(context.Background(), "tcp", l.Address)
	if err == nil {
		l.tuned = true
	}
	return ln, err
}

func (s *Server) accept(l *Listener) {
	defer s.acceptWG.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.Log.Warn("accept failed", "listener", l.Name, "error", err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		a := accepted{l: l, c: c, client: addrPortOf(c.RemoteAddr())}
		a.addr = a.client.Addr()
		if len(l.ProxyProtocol.Trusted) > 0 && l.ProxyProtocol.trusts(a.addr) {
			// The header may take its time: read it on the worker, and
			// ask the gate about the client it names there.
			a.proxied = true
		} else if !s.gate(&a) {
			c.Close()
			continue
		}
		if !s.admit(l) {
			if a.release != nil {
				a.release()
			}
			c.Close()
			continue
		}
		s.wg.Add(1)
		select {
		case s.handoff <- a:
		default:
			go s.worker(a)
		}
	}
}

// gate asks the Gate about a new connection, on the accept goroutine (a
// direct client) so that a refused one costs no goroutine and, on an
// implicit TLS listener, no handshake; or on the worker once a PROXY
// header has named the client. It returns false when the connection is to
// be closed at once.
func (s *Server) gate(a *accepted) bool {
	if s.Gate == nil {
		return true
	}
	l := a.l
	v, reason, release := s.Gate.Connect(l.Name, a.addr)
	if v == Admit {
		a.release = release
		return true
	}
	if s.Observer != nil {
		s.Observer.ConnectionRefused(l.Name, reason)
	}
	if s.Log.Enabled(context.Background(), slog.LevelDebug) {
		s.Log.Debug("connection refused", a.remoteAttrs([]any{"listener", l.Name}, "reason", reason)...)
	}
	if v == Refuse && l.Mode == STARTTLS && l.Refuse != nil {
		a.refused = true
		return true
	}
	return false
}

// remoteAttrs are before, the connection's remote (the client) and, when
// a balancer named the client, via (the balancer), then after: remote
// comes before what a client can choose, as fail2ban's filter expects.
func (a *accepted) remoteAttrs(before []any, after ...any) []any {
	remote := a.c.RemoteAddr().String()
	if a.client.IsValid() {
		remote = a.client.String()
	}
	attrs := make([]any, 0, len(before)+4+len(after)) // one allocation per connection
	attrs = append(append(attrs, before...), "remote", remote)
	if a.via.IsValid() {
		attrs = append(attrs, "via", a.via.String())
	}
	return append(attrs, after...)
}

// readProxyHeader reads the PROXY header a trusted balancer's connection
// starts with, within the listener's header timeout (and at once on
// shutdown), and makes the client it names a's client. It reports whether
// the connection may go on; a refused header is logged and counted here.
func (s *Server) readProxyHeader(a *accepted) bool {
	l, raw := a.l, a.c
	raw.SetReadDeadline(time.Now().Add(EffectiveProxyHeaderTimeout(l.ProxyProtocol.Timeout)))
	stop := context.AfterFunc(s.preCtx, func() { raw.SetReadDeadline(time.Unix(1, 0)) })
	h, err := ReadProxyHeader(raw)
	stopped := !stop()
	raw.SetReadDeadline(time.Time{})
	if err != nil {
		if stopped {
			return false // shutdown: nothing to report
		}
		s.headerRefused(a, err)
		return false
	}
	// A header naming the connection's own peer is the balancer
	// speaking for itself, as HAProxy's version 1 health checks do.
	a.balancer = h.Result() == HeaderLocal || h.Client == a.client
	if s.Observer != nil {
		result := HeaderOK
		if a.balancer {
			result = HeaderLocal
		}
		s.Observer.ProxyHeader(l.Name, result)
	}
	if !a.balancer {
		a.via, a.client, a.addr, a.local = a.client, h.Client, h.Client.Addr(), h.Local
	}
	return true
}

// headerRefused logs and counts a PROXY header mailfront refused: a
// warning, since a trusted balancer sent it (or an untrusted source tried
// to speak for its clients), except for a connection closed before its
// first byte, which is a balancer's plain TCP health check.
func (s *Server) headerRefused(a *accepted, err error) {
	var he *HeaderError
	if !errors.As(err, &he) {
		he = &HeaderError{Result: HeaderMalformed, Err: err}
	}
	if s.Observer != nil {
		s.Observer.ProxyHeader(a.l.Name, he.Result)
	}
	level := slog.LevelWarn
	if he.Result == HeaderEmpty {
		level = slog.LevelDebug
	}
	s.Log.Log(context.Background(), level, "PROXY header refused",
		a.remoteAttrs([]any{"listener", a.l.Name}, "reason", he.Result, "error", he.Err.Error())...)
}

// worker serves a, then the connections handed to it while it waits (see
// workerIdle).
func (s *Server) worker(a accepted) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		s.serve(a)
		idle.Reset(workerIdle)
		select {
		case a = <-s.handoff:
		case <-idle.C:
			return
		case <-s.preCtx.Done():
			return
		}
	}
}

// admit counts a new connection against the caps.
func (s *Server) admit(l *Listener) bool {
	if s.conns.Add(1) > int64(s.MaxConns) {
		s.conns.Add(-1)
		s.Log.Debug("connection refused", "listener", l.Name, "reason", "max connections")
		return false
	}
	if l.MaxConns > 0 && l.conns.Add(1) > int64(l.MaxConns) {
		l.conns.Add(-1)
		s.conns.Add(-1)
		s.Log.Debug("connection refused", "listener", l.Name, "reason", "listener max connections")
		return false
	}
	if l.MaxConns <= 0 {
		l.conns.Add(1)
	}
	return true
}

func (s *Server) release(l *Listener, gate func()) {
	l.conns.Add(-1)
	s.conns.Add(-1)
	if gate != nil {
		gate()
	}
}

// Shutdown stops accepting, tells pre-login sessions goodbye, gives relayed
// sessions the drain period (or until ctx ends) and then closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownMu.Lock()
	defer s.shutdownMu.Unlock()
	if !s.started {
		return nil
	}
	for _, l := range s.Listeners {
		l.ln.Close()
	}
	s.acceptWG.Wait()
	s.preCancel()
	drained := make(chan struct{})
	// Pre-login sessions end at once on Stop, so waiting for every session
	// is waiting for the relayed ones.
	go func() { s.wg.Wait(); close(drained) }()
	timer := time.NewTimer(s.Drain)
	defer timer.Stop()
	select {
	case <-drained:
	case <-timer.C:
	case <-ctx.Done():
	}
	s.relayStop()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutdown: %w", ctx.Err())
	}
}

// serve runs one connection's pre-login phase on its own goroutine, then
// hands a logged-in session to the relay and returns: the relay runs its
// directions on goroutines of their own (with small stacks, not this one's,
// grown by the TLS handshake) and, on Linux, on none at all while the
// session is quiet. The relay's end logs the session and releases it. A
// session's end is reported (log line, observer) after its connection is
// released, so that whoever waits for the report sees it gone.
func (s *Server) serve(a accepted) {
	l, raw := a.l, a.c
	relayed, released := false, false
	defer func() {
		if !relayed {
			if !released {
				s.release(l, a.release)
			}
			s.wg.Done()
		}
	}()
	if a.proxied {
		if !s.readProxyHeader(&a) || !s.gate(&a) {
			raw.Close()
			return
		}
	}
	if a.refused {
		c := NewConn(raw, l.Limits)
		l.Refuse(c)
		c.CloseLingering()
		return
	}
	start := time.Now()
	if tc, ok := raw.(*net.TCPConn); ok && !l.tuned {
		tc.SetNoDelay(true) // the greeting must not wait for Nagle
		if c := keepaliveConfig(l.Keepalive); c.Enable {
			tc.SetKeepAliveConfig(c)
		} else {
			tc.SetKeepAlive(false)
		}
	}
	c := NewConn(raw, l.Limits)
	c.sniff, c.relay = true, s.relayOpts
	sess := &Session{
		ID:        s.nextID.Add(1),
		Conn:      c,
		Listener:  l.Name,
		Protocol:  l.Protocol,
		Mode:      l.Mode,
		TLSConfig: l.TLS,
		Addr:      a.addr,
		Client:    a.client,
		local:     a.local,
		balancer:  a.balancer,
		Gate:      s.Gate,
		Observer:  s.Observer,

		PlaintextRefusal: l.PlaintextRefusal,
	}
	sess.Log = s.Log.With(a.remoteAttrs([]any{"conn", sess.ID}, "listener", l.Name)...)
	if s.Observer != nil {
		s.Observer.SessionStarted(l.Name)
	}
	stop := context.AfterFunc(s.preCtx, c.Stop)
	h, err := s.preLogin(l, sess)
	stop()
	if h == nil {
		in, out := c.Counts()
		if sess.Outcome == OutcomeLimit || sess.Outcome == OutcomeProtocolError {
			c.CloseLingering()
		} else {
			c.Close()
		}
		if sess.Outcome == "" {
			sess.Outcome = outcomeOf(err)
		}
		if ce := (*CrossProtocolError)(nil); errors.As(err, &ce) && ce.Protocol == "proxy" {
			s.headerRefused(&a, &HeaderError{Result: HeaderUntrusted,
				Err: errors.New("a PROXY header from a source not in proxy_protocol.trusted")})
		}
		s.release(l, a.release)
		released = true
		s.logEnd(sess, start, in, out, err)
		if s.Observer != nil {
			s.Observer.SessionEnded(l.Name, sess.Outcome, false, 0, 0)
		}
		return
	}
	in, out := c.Counts()
	clientNet, toBackend := c.Detach()
	backendNet, toClient := h.Backend.Detach()
	relayed = true
	if s.Observer != nil {
		s.Observer.SessionRelayed(l.Name)
	}
	runRelay(s.relayCtx, s.relayOpts, clientNet, backendNet, toBackend, toClient, h.Idle, h.Goodbye, func(st RelayStats, rerr error) {
		sess.Outcome = OutcomeOK
		s.release(l, a.release)
		s.logEnd(sess, start, in+st.Up, out+st.Down, rerr)
		if s.Observer != nil {
			s.Observer.SessionEnded(l.Name, sess.Outcome, true, st.Up, st.Down)
		}
		s.wg.Done()
	})
}

func (s *Server) preLogin(l *Listener, sess *Session) (*Handoff, error) {
	if l.Mode == Implicit {
		_, err := sess.Conn.StartTLS(s.preCtx, l.TLS)
		if rh := (tls.RecordHeaderError{}); errors.As(err, &rh) && looksLikeProxyHeader(rh.RecordHeader[:]) {
			// A PROXY header from a source that may not send one: not a
			// TLS failure but someone speaking for clients it may not.
			sess.SetOutcome(OutcomeProtocolError)
			return nil, &CrossProtocolError{Protocol: "proxy"}
		}
		if sess.handshaken(err) != nil {
			return nil, err
		}
	}
	return l.Handler.Serve(s.preCtx, sess)
}

// outcomeOf is the outcome of a session that ended with err and without
// one recorded by its handler.
func outcomeOf(err error) Outcome {
	var le *LimitError
	switch {
	case err == nil:
		return OutcomeClientClosed
	case errors.Is(err, ErrShutdown):
		return OutcomeShutdown
	case errors.Is(err, ErrIdle), errors.Is(err, ErrTotalTime):
		return OutcomeTimeout
	case errors.As(err, &le):
		return le.Outcome()
	case errors.Is(err, ErrCrossProtocol):
		return OutcomeProtocolError
	case clientGone(err):
		return OutcomeClientClosed
	case strings.Contains(err.Error(), "remote error: tls: "):
		// The client's alert after the handshake: one that checks the
		// certificate late, refusing it ("bad certificate").
		return OutcomeTLSFailed
	}
	return OutcomeInternal
}

// logEnd writes the one line every session ends with.
func (s *Server) logEnd(sess *Session, start time.Time, in, out int64, err error) {
	attrs := []any{
		"outcome", string(sess.Outcome),
		"protocol", sess.Protocol,
		"tls_mode", sess.Mode.String(),
		"bytes_in", in,
		"bytes_out", out,
		"duration", time.Since(start).Round(time.Millisecond),
	}
	if st := sess.Conn.TLS(); st != nil {
		attrs = append(attrs,
			"tls_version", tls.VersionName(st.Version),
			"tls_cipher", tls.CipherSuiteName(st.CipherSuite),
			"sni", st.ServerName,
			"starttls", sess.StartedTLS)
	}
	if sess.User != "" {
		attrs = append(attrs, "user", sess.User)
	}
	if err != nil && sess.Outcome == OutcomeInternal {
		attrs = append(attrs, "error", err.Error())
	} else if err != nil {
		attrs = append(attrs, "reason", err.Error())
	}
	if sess.Outcome == OutcomeClientClosed && sess.Conn.TLS() != nil && in == sess.inAtTLS && sess.User == "" {
		// No alert to name: mbsync checks the certificate after the
		// handshake and, refusing it, closes without one.
		attrs = append(attrs, "hint", "the client left without a word after the TLS handshake: one that checks the certificate afterwards (mbsync) does so when it refuses it")
	}
	level := slog.LevelInfo
	if sess.balancer && sess.Outcome == OutcomeClientClosed && in == 0 {
		// A balancer's health check: its header, then a close. Every few
		// seconds an INFO line would bury the real ones.
		level = slog.LevelDebug
	}
	sess.Log.Log(context.Background(), level, "session end", attrs...)
}

// bindHint says what to do about a listener that could not bind: a port
// below 1024 needs a privilege, and a port in use has another owner.
func bindHint(address string, err error) string {
	_, p, _ := net.SplitHostPort(address)
	port, _ := strconv.Atoi(p)
	switch {
	case errors.Is(err, syscall.EACCES) && port > 0 && port < 1024:
		return ": ports below 1024 need the CAP_NET_BIND_SERVICE capability: run mailfront from its systemd unit " +
			"(AmbientCapabilities=CAP_NET_BIND_SERVICE), or grant it with setcap cap_net_bind_service=+ep on the binary, " +
			"or listen on a port above 1023 and forward to it"
	case errors.Is(err, syscall.EADDRINUSE):
		return ": another program listens on this address (ss -ltnp shows which): stop it, or move it, as README's quick start moves the legacy server to loopback ports"
	}
	return ""
}
