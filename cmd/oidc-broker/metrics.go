package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/oidc-broker/oidc-broker/broker"
)

// startMetrics serves h, the broker's metrics, at /metrics on cfg.Listen,
// a server of its own, so that the metrics never share an address (or its
// exposure) with the sign-in pages. With cfg.Listen empty it serves
// nothing. The returned function stops the server, letting scrapes in
// flight finish within its context.
func startMetrics(cfg broker.MetricsConfig, h http.Handler, logger *slog.Logger) (shutdown func(context.Context) error, err error) {
	if cfg.Listen == "" {
		return func(context.Context) error { return nil }, nil
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "error", err)
		}
	}()
	logger.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	return hs.Shutdown, nil
}
