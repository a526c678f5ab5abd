// Package redisserver runs a real redis-server for tests and benchmarks: in
// the foreground, on a free port of 127.0.0.1, without persistence of its
// own, in a temporary directory, stopped when the test ends.
//
// A test can stop it and start it again with its data (Stop saves a
// snapshot that Start loads), or pause it (SIGSTOP) to play a server that
// hangs. TEST-ONLY. It needs redis-server on PATH (Debian's redis-server
// package; ./scripts/test installs it) and fails the test without it.
package redisserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/procstop"
)

// Time limits.
const (
	startTimeout = 10 * time.Second
	stopTimeout  = 10 * time.Second
)

// Server is a redis-server process under a test's control.
type Server struct {
	// Addr is its host:port on 127.0.0.1.
	Addr string

	tb     testing.TB
	dir    string
	opts   Options
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	output *bytes.Buffer
}

// Start runs a redis-server for tb and waits until it answers PING. It is
// killed when tb ends, and its output logged if tb failed.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartWith(tb, Options{})
}

// Options configure a server.
type Options struct {
	// Password, unless "", must be given by clients (requirepass).
	Password string
	// TLSCertFile and TLSKeyFile, when set, make the server speak TLS only,
	// with this certificate (clients need none).
	TLSCertFile, TLSKeyFile string
	// ReplicaOf, when set, starts the server as a replica of this
	// host:port.
	ReplicaOf string
	// Args are more redis-server arguments ("--cluster-enabled", "yes").
	Args []string
}

// StartWith is Start with options.
func StartWith(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redis-server is not installed (Debian package redis-server): run ./scripts/test, which installs it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{Addr: addr, tb: tb, dir: tb.TempDir(), opts: opts, output: newBuffer()}
	tb.Cleanup(s.kill)
	s.Restart()
	return s
}

// Restart starts the server again on the same address with the data that
// Stop saved.
func (s *Server) Restart() {
	s.tb.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--dbfilename", "dump.rdb", "--loglevel", "warning")
	if s.opts.TLSCertFile != "" {
		cmd.Args = append(cmd.Args, "--port", "0", "--tls-port", port, "--tls-cert-file", s.opts.TLSCertFile,
			"--tls-key-file", s.opts.TLSKeyFile, "--tls-auth-clients", "no", "--tls-replication", "yes", "--tls-ca-cert-file", s.opts.TLSCertFile)
	} else {
		cmd.Args = append(cmd.Args, "--port", port)
	}
	if s.opts.Password != "" {
		cmd.Args = append(cmd.Args, "--requirepass", s.opts.Password, "--masterauth", s.opts.Password)
	}
	if s.opts.ReplicaOf != "" {
		host, port, _ := net.SplitHostPort(s.opts.ReplicaOf)
		cmd.Args = append(cmd.Args, "--replicaof", host, port)
	}
	cmd.Args = append(cmd.Args, s.opts.Args...)
	s.run(cmd)
}

func newBuffer() *bytes.Buffer { return &bytes.Buffer{} }

// run starts cmd and waits until it answers PING.
func (s *Server) run(cmd *exec.Cmd) {
	s.tb.Helper()
	cmd.Stdout, cmd.Stderr = syncWriter{s}, syncWriter{s}
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start %s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		err := s.ping()
		if err == nil {
			return
		}
		select {
		case <-exited:
			s.tb.Fatalf("%s exited at start: %s", cmd.Path, s.Output())
		default:
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server did not answer within %v: %v", startTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop saves a snapshot and shuts the server down (SHUTDOWN SAVE): clients
// get connection refused until Restart, which loads the snapshot.
func (s *Server) Stop() {
	s.tb.Helper()
	c, err := redis.Dial("tcp", s.Addr, s.dialOptions(stopTimeout)...)
	if err != nil {
		s.tb.Fatalf("redis: %v", err)
	}
	_, err = c.Do("SHUTDOWN", "SAVE") // answers nothing: the connection closes
	c.Close()
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		s.tb.Fatalf("redis-server did not shut down (%v)", err)
	}
}

// Kill ends the process at once (SIGKILL), as a crash does: it saves
// nothing. Restart starts it again, empty.
func (s *Server) Kill() {
	s.tb.Helper()
	s.signal(syscall.SIGKILL)
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		s.tb.Fatalf("redis-server did not die")
	}
	_ = os.Remove(filepath.Join(s.dir, "dump.rdb"))
}

// Pause stops the process (SIGSTOP): connections and commands hang, as with
// a server that is overloaded or cut off. Resume continues it. Pause
// returns once every thread of redis-server is stopped (procstop.Wait).
func (s *Server) Pause() {
	s.tb.Helper()
	s.signal(syscall.SIGSTOP)
	s.mu.Lock()
	pid := s.cmd.Process.Pid
	s.mu.Unlock()
	if err := procstop.Wait(pid, 5*time.Second); err != nil {
		s.tb.Fatalf("redis-server: %v", err)
	}
}

// Resume continues a paused server.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("redis-server: %v", err)
	}
}

// Do runs one command on a new connection.
func (s *Server) Do(cmd string, args ...any) any {
	s.tb.Helper()
	c, err := redis.Dial("tcp", s.Addr, s.dialOptions(5*time.Second)...)
	if err != nil {
		s.tb.Fatalf("redis: %v", err)
	}
	defer c.Close()
	v, err := c.Do(cmd, args...)
	if err != nil {
		s.tb.Fatalf("redis %s: %v", cmd, err)
	}
	return v
}

// Try runs one command on a new connection and returns its error, for a
// server that may refuse or drop connections (one being restarted, or
// made a replica).
func (s *Server) Try(cmd string, args ...any) (any, error) {
	c, err := redis.Dial("tcp", s.Addr, s.dialOptions(5*time.Second)...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Do(cmd, args...)
}

// dialOptions are the test's own connections' (TLS without verification:
// the server is the test's).
func (s *Server) dialOptions(read time.Duration) []redis.DialOption {
	return []redis.DialOption{redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(read), redis.DialPassword(s.opts.Password),
		redis.DialUseTLS(s.opts.TLSCertFile != ""), redis.DialTLSSkipVerify(true)}
}

// Output is what the server printed so far.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.output.String()
}

func (s *Server) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := redis.DialContext(ctx, "tcp", s.Addr, s.dialOptions(time.Second)...)
	if err != nil {
		return err
	}
	defer c.Close()
	if v, err := redis.String(c.Do("PING")); err != nil || v != "PONG" {
		return errors.Join(err, fmt.Errorf("PING answered %q", v))
	}
	return nil
}

// kill ends the process at the end of the test (a paused one too).
func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
	default:
		_ = cmd.Process.Kill()
		<-exited
	}
	if s.tb.Failed() {
		s.tb.Logf("redis-server %s output:\n%s", s.Addr, s.Output())
	}
}

// Port is the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// PID is the process ID of the running server (0 when it is stopped), for
// tests that read its CPU time or pin it to a CPU.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	select {
	case <-s.exited:
		return 0
	default:
		return s.cmd.Process.Pid
	}
}

// syncWriter appends the process's output under the server's lock.
type syncWriter struct{ s *Server }

func (w syncWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.output.Write(p)
}
