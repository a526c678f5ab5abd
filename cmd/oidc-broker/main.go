// Command oidc-broker is a multi-IdP OpenID Connect relying-party broker:
// it signs users in with any of several identity providers and relays one
// clean identity to the apps behind it.
//
//	oidc-broker [serve] --config broker.yaml   run the broker (default command)
//	oidc-broker check --config broker.yaml     validate the configuration
//	oidc-broker demo                           run with built-in demo IdPs
//	oidc-broker version                        print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/oidc-broker/oidc-broker/broker"
	"github.com/oidc-broker/oidc-broker/providers"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stopCPUProfile()
	os.Exit(code)
}

// stopCPUProfile ends the CPU profile of a binary built with -tags
// cpuprofile (cpuprofile.go: for the load harness only); in every other
// build it does nothing.
var stopCPUProfile = func() {}

// run dispatches a command and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "check":
		return check(args, stdout, stderr)
	case "demo":
		return runDemo(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "oidc-broker", versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "oidc-broker: unknown command %q\n%s", cmd, usage)
	return 2
}

const usage = `Usage:
  oidc-broker [serve] --config FILE [--shutdown-timeout 20s]
                                      run the broker: SIGHUP reloads FILE, SIGTERM drains
  oidc-broker check --config FILE [--online [--timeout 10s] [--json]]
                                      validate FILE, print every problem, exit 1 on error;
                                      --online also asks each IdP what the broker relies on
  oidc-broker demo [--listen ADDR]    run the broker with two built-in demo IdPs and a demo app
  oidc-broker version                 print the version
`

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "broker.yaml", "configuration file")
	drain := fs.Duration("shutdown-timeout", defaultDrain, "on SIGTERM, how long to let requests in flight finish")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	hup := notifyHUP() // from the start: a SIGHUP while starting must not end the process
	cfg, err := broker.LoadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, "oidc-broker:", err)
		return 1
	}
	logger := newLogger(cfg.Log, stderr)
	for _, w := range cfg.Warnings() {
		logger.Warn("configuration: " + w)
	}
	srv, err := broker.New(cfg, broker.Options{Logger: logger})
	if err != nil {
		fmt.Fprintln(stderr, "oidc-broker:", err)
		return 1
	}
	defer srv.Close()
	stopMetrics, err := startMetrics(cfg.Metrics, srv.MetricsHandler(), logger)
	if err != nil {
		fmt.Fprintln(stderr, "oidc-broker:", err)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = stopMetrics(ctx)
	}()
	reload := func() {
		logger.Info("SIGHUP: reloading the configuration", "file", *path)
		cfg, err := broker.LoadConfig(*path)
		if err == nil {
			for _, w := range cfg.Warnings() {
				logger.Warn("configuration: " + w)
			}
			err = srv.Reload(cfg)
		}
		if err != nil {
			problems := problemList(err)
			logger.Error("configuration reload refused; the running configuration stays", "file", *path, "problems", len(problems))
			for _, p := range problems {
				logger.Error("configuration problem", "file", *path, "line", p.Line, "problem", p.Message)
			}
		}
	}
	addr := cfg.Listen
	if addr == "" {
		addr = broker.DefaultListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(stderr, "oidc-broker:", err)
		return 1
	}
	logger.Info("oidc-broker listening", "addr", ln.Addr().String(), "version", versionString())
	return serveUntilSignal(ln, cfg.Server.NewHTTPServer("", srv.Handler()), logger, *drain, hup, reload)
}

// problemList is a configuration error's problems, one by one.
func problemList(err error) []broker.Problem {
	if cerr, ok := errors.AsType[*broker.ConfigError](err); ok {
		return cerr.Problems
	}
	var out []broker.Problem
	for _, e := range providers.Flatten(err) {
		out = append(out, broker.Problem{Message: e.Error()})
	}
	return out
}

// defaultDrain is how long SIGTERM lets requests in flight finish.
const defaultDrain = 20 * time.Second

// notifyHUP delivers SIGHUP to the returned channel instead of ending the
// process.
func notifyHUP() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// serveUntilSignal serves hs (built by broker.ServerConfig.NewHTTPServer:
// its timeouts) on ln until SIGINT or SIGTERM, then stops accepting
// connections and lets requests in flight finish for up to drain. A signal
// on hup (notifyHUP) calls reload (nil: ignored) and goes on serving.
func serveUntilSignal(ln net.Listener, hs *http.Server, logger *slog.Logger, drain time.Duration, hup chan os.Signal, reload func()) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer signal.Stop(hup)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	for done := false; !done; {
		select {
		case err := <-errc:
			logger.Error("server stopped", "error", err)
			return 1
		case <-hup:
			if reload != nil {
				reload()
			}
		case <-ctx.Done():
			done = true
		}
	}
	logger.Info("shutting down: finishing requests in flight", "timeout", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("shutdown: requests still in flight were cut off", "error", err)
		return 1
	}
	logger.Info("shut down")
	return 0
}

func newLogger(cfg broker.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
