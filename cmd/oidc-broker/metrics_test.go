package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/oidc-broker/oidc-broker/broker"
)

type metricsLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *metricsLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *metricsLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStartMetrics: the metrics server serves the handler at /metrics only,
// on its own address, and stops; without an address it serves nothing.
func TestStartMetrics(t *testing.T) {
	var logs metricsLogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "oidc_broker_test 1\n") })
	stop, err := startMetrics(broker.MetricsConfig{Listen: "127.0.0.1:0"}, h, logger)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`msg="metrics listening" addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no address in the log: %s", logs.String())
	}
	base := "http://" + m[1]
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "oidc_broker_test 1\n" {
		t.Errorf("/metrics: %d %q", resp.StatusCode, b)
	}
	if resp, err := http.Get(base + "/oauth2/sign_in"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("another path: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", m[1]); err == nil {
		t.Error("still listening after shutdown")
	}

	off, err := startMetrics(broker.MetricsConfig{}, h, logger)
	if err != nil || off(context.Background()) != nil {
		t.Errorf("off: %v", err)
	}
	if strings.Count(logs.String(), "metrics listening") != 1 {
		t.Errorf("metrics off, yet: %s", logs.String())
	}

	// A taken address fails, naming the setting.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := startMetrics(broker.MetricsConfig{Listen: ln.Addr().String()}, h, logger); err == nil || !strings.HasPrefix(err.Error(), "metrics.listen: ") {
		t.Errorf("taken address: %v", err)
	}
}
