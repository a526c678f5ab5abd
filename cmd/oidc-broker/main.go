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
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

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
  oidc-broker [serve] --config FILE   run the broker
  oidc-broker check --config FILE     validate FILE, print every problem, exit 1 on error
  oidc-broker demo [--listen ADDR]    run the broker with two built-in demo IdPs and a demo app
  oidc-broker version                 print the version
`

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "broker.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
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
	return serveUntilSignal(ln, srv.Handler(), logger)
}

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "broker.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := broker.LoadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stdout, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d providers)\n", *path, len(cfg.Providers))
	return 0
}

// serveUntilSignal serves until SIGINT or SIGTERM, then drains in-flight
// requests for up to 20 seconds.
func serveUntilSignal(ln net.Listener, h http.Handler, logger *slog.Logger) int {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		logger.Error("server stopped", "error", err)
		return 1
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("shutdown", "error", err)
		return 1
	}
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
