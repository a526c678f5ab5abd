// Command oidc-broker is a multi-IdP OpenID Connect relying-party broker:
// it signs users in with any of several identity providers and relays one
// clean identity to the apps behind it.
//
//	oidc-broker [serve] --config broker.yaml   run the broker (default command)
//	oidc-broker check --config broker.yaml     validate the configuration
//	oidc-broker demo                           run with built-in demo IdPs
//	oidc-broker version                        print the version
//	oidc-broker help [command]                 list the commands, or a command's flags
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
	"github.com/oidc-broker/oidc-broker/broker/httpserver"
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
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			return help(nil, stdout, stderr)
		case "-version", "--version":
			return printVersion(args[1:], stdout, stderr)
		case "help":
			return help(args[1:], stdout, stderr)
		}
	}
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if c, ok := findCommand(name); ok && c.run != nil {
		return c.run(args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "oidc-broker: unknown command %q\n\n", name)
	writeUsage(stderr)
	return 2
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", defaultConfig, "configuration file")
	drain := fs.Duration("shutdown-timeout", defaultDrain, "on SIGTERM, how long to let requests in flight finish")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	hup := notifyHUP() // from the start: a SIGHUP while starting must not end the process
	cfg, err := broker.LoadConfig(*path)
	if err != nil {
		if hint := noConfigHint(err, *path, flagSet(fs, "config")); hint != "" {
			fmt.Fprint(stderr, hint)
			return 1
		}
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
	releaseLoadGarbage()
	if err := probeStore(srv, logger); err != nil {
		fmt.Fprintln(stderr, "oidc-broker:", err)
		return 1
	}
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
		releaseLoadGarbage()
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

// releaseLoadGarbage collects the garbage of loading a configuration and
// returns the freed memory to the operating system at once. Parsing the
// YAML of 10,000 providers allocates about 160 MB on the way to a
// configuration of a few: the heap grows for it, and the runtime would
// return those pages only slowly, so the process's RSS would stay at two
// or three times what it keeps (issue 18: 75-120 MB after start, now about
// half). Called once after the start-up's load and once after each reload:
// a forced collection costs a few milliseconds, then, and nothing on the
// request path.
func releaseLoadGarbage() { debug.FreeOSMemory() }

// probeStoreTimeout bounds the session store's probe at start.
const probeStoreTimeout = 2 * time.Second

// probeStore pings the session store once at start: a Redis Cluster node
// and a server older than Redis 7.0 are refused (an error), a store that
// does not answer is logged and the broker starts all the same (/readyz
// says so until it answers).
func probeStore(srv *broker.Server, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeStoreTimeout)
	defer cancel()
	err := srv.ProbeStore(ctx)
	switch {
	case errors.Is(err, broker.ErrRedisCluster), errors.Is(err, broker.ErrRedisVersion):
		return fmt.Errorf("session.redis: %w", err)
	case err != nil:
		logger.Warn("session store unavailable at start; starting all the same", "error", err)
	}
	return nil
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

// defaultConfig is the configuration file serve and check read without
// --config.
const defaultConfig = "broker.yaml"

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
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
	go func() { errc <- hs.Serve(httpserver.NewListener(ln)) }() // Shutdown drops silent connections
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
