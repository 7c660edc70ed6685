package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const recordSize = 16 << 10 // a full TLS record's plaintext

// cipherResult is the CPU cost of sealing one GB on this machine.
type cipherResult struct {
	name string
	cpu  time.Duration // per GB (1e9 bytes)
}

// runCiphers measures the floor under the bulk figure: sealing gb GB in
// 16 KiB records, first with crypto/cipher alone, then through a crypto/tls
// connection (record framing included) for each suite a client may pick.
func runCiphers(env *runEnv, gb float64) ([]cipherResult, error) {
	total := int64(gb * 1e9)
	var out []cipherResult
	for _, bits := range []int{128, 256} {
		d, err := sealAESGCM(bits/8, total)
		if err != nil {
			return nil, err
		}
		out = append(out, cipherResult{fmt.Sprintf("crypto/cipher AES-%d-GCM Seal", bits), scale(d, total)})
	}
	cert, err := tls.LoadX509KeyPair(env.pki.certFile, env.pki.keyFile)
	if err != nil {
		return nil, err
	}
	for _, s := range []struct {
		name    string
		version uint16
		suite   uint16
	}{
		{"crypto/tls 1.3 TLS_AES_128_GCM_SHA256 Write", tls.VersionTLS13, 0},
		{"crypto/tls 1.2 ECDHE-ECDSA-AES128-GCM Write", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{"crypto/tls 1.2 ECDHE-ECDSA-AES256-GCM Write", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		{"crypto/tls 1.2 ECDHE-ECDSA-CHACHA20 Write", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
	} {
		srv := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: s.version, MaxVersion: s.version}
		cli := tlsClient(env.pki.pool, nil, nil)
		cli.MinVersion, cli.MaxVersion = s.version, s.version
		if s.suite != 0 {
			srv.CipherSuites = []uint16{s.suite}
			cli.CipherSuites = []uint16{s.suite}
		}
		d, err := sealTLS(srv, cli, total)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		out = append(out, cipherResult{s.name, scale(d, total)})
	}
	return out, nil
}

func scale(d time.Duration, total int64) time.Duration {
	return time.Duration(float64(d) * 1e9 / float64(total))
}

// onThread runs f on a locked OS thread and returns that thread's CPU time.
func onThread(f func() error) (time.Duration, error) {
	type result struct {
		d   time.Duration
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		start := threadCPU()
		err := f()
		ch <- result{threadCPU() - start, err}
	}()
	r := <-ch
	return r.d, r.err
}

func sealAESGCM(keyLen int, total int64) (time.Duration, error) {
	block, err := aes.NewCipher(make([]byte, keyLen))
	if err != nil {
		return 0, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return 0, err
	}
	plain := make([]byte, recordSize)
	out := make([]byte, 0, recordSize+aead.Overhead())
	nonce := make([]byte, aead.NonceSize())
	aad := []byte{23, 3, 3, 0x40, 0x11}
	return onThread(func() error {
		for done := int64(0); done < total; done += recordSize {
			nonce[len(nonce)-1]++
			out = aead.Seal(out[:0], nonce, plain, aad)
		}
		return nil
	})
}

// discardConn passes the handshake through, then swallows every write, so
// what is timed is the TLS layer sealing records and nothing else.
type discardConn struct {
	net.Conn
	discard atomic.Bool
}

func (c *discardConn) Write(p []byte) (int, error) {
	if c.discard.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func sealTLS(srvCfg, cliCfg *tls.Config, total int64) (time.Duration, error) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		s := tls.Server(b, srvCfg)
		if s.Handshake() == nil {
			io.Copy(io.Discard, s) // until the pipe closes
		}
	}()
	dc := &discardConn{Conn: a}
	c := tls.Client(dc, cliCfg)
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	dc.discard.Store(true)
	plain := make([]byte, recordSize)
	return onThread(func() error {
		for done := int64(0); done < total; done += recordSize {
			if _, err := c.Write(plain); err != nil {
				return err
			}
		}
		return nil
	})
}

// threadCPU is the CPU time the calling OS thread has used
// (CLOCK_THREAD_CPUTIME_ID: getrusage's RUSAGE_THREAD is tick-grained on
// some kernels).
func threadCPU() time.Duration {
	const clockThreadCPUTime = 3
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// selfCPU is the load tool's own CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func printCiphers(w io.Writer, rs []cipherResult) {
	fmt.Fprintf(w, "\n## cipher floor: CPU to seal 1 GB in 16 KiB records, one core, in the load tool\n")
	for _, r := range rs {
		fmt.Fprintf(w, "  %-46s %.3f s/GB\n", r.name, r.cpu.Seconds())
	}
}
