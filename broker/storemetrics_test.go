package broker

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/broker/metrics"
	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
	"github.com/oidc-broker/oidc-broker/providers"
)

// TestStoreMetricsCountFailures: with the session store unreachable (Redis
// on a port where nothing listens), the failed reads are counted, and
// forward-auth answers count as unavailable.
func TestStoreMetricsCountFailures(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) {
		c.Session.Store = "redis"
		c.Session.Redis.Address = closedAddr(t)
		shortTimeouts(&c.Session.Redis)
	}))
	withCookie := func(path string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, e.broker.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: "some-session"})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := withCookie("/oauth2/auth")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("forward-auth with the store down: %d", resp.StatusCode)
	}
	// The (throttled) error line carries the request's ID, as the answer does.
	if id := resp.Header.Get("X-Request-Id"); id == "" ||
		!regexp.MustCompile(`level=ERROR msg="session load failed" error=.* request_id=`+id+`\n`).MatchString(e.logs.String()) {
		t.Errorf("no store error line with the request ID %q:\n%s", id, e.logs)
	}
	if resp := withCookie("/oauth2/sign_in"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in page with the store down: %d", resp.StatusCode)
	}
	expect(t, scrape(t, e.server), map[string]float64{
		`oidc_broker_session_store_errors_total{op="find"}`:                2,
		`oidc_broker_session_store_duration_seconds_count{op="find"}`:      2,
		`oidc_broker_forward_auth_decisions_total{decision="unavailable"}`: 1,
	})
}

// TestStoreMetricsCountOperations: a login's store operations are timed
// with Redis, and none failed; the memory store's are not timed.
func TestStoreMetricsCountOperations(t *testing.T) {
	e := newRedisEnv(t, redisserver.Start(t))
	e.login("alpha", "alice", "/")
	if !e.signedIn(e.client) { // a find
		t.Fatal("not signed in")
	}
	e.login("alpha", "alice", "/") // signed in again: the old session is deleted
	m := scrape(t, e.server)
	expect(t, m, nil,
		`oidc_broker_session_store_duration_seconds_count{op="find"}`,
		`oidc_broker_session_store_duration_seconds_count{op="commit"}`,
		`oidc_broker_session_store_duration_seconds_count{op="delete"}`)
	// The state is marked spent in the commit's step: no once of its own.
	if v := m[`oidc_broker_session_store_duration_seconds_count{op="once"}`]; v != 0 {
		t.Errorf("a login timed %v once operations, want none", v)
	}
	for series, v := range m {
		if strings.HasPrefix(series, "oidc_broker_session_store_errors_total") && v != 0 {
			t.Errorf("a store error was counted: %s %v", series, v)
		}
	}

	mem := newEnv(t)
	mem.login("alpha", "alice", "/")
	for series, v := range scrape(t, mem.server) {
		if strings.HasPrefix(series, "oidc_broker_session_store_duration_seconds_count") && v != 0 {
			t.Errorf("the memory store was measured: %s %v", series, v)
		}
	}
}

// TestObservedStoreInterfaces: the wrapper has the context methods, for a
// store with them (Redis) and one without (the memory store), and counts
// through both.
func TestObservedStoreInterfaces(t *testing.T) {
	m, err := metrics.New(nil, func() *providers.Registry { return nil })
	if err != nil {
		t.Fatal(err)
	}
	st := m.ObserveStore(store.NewMemorySessions())
	cs, ok := st.(scs.CtxStore)
	if !ok {
		t.Fatal("memory: no context methods")
	}
	if err := cs.CommitCtx(context.Background(), "t1", []byte("x"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if b, found, err := st.Find("t1"); err != nil || !found || string(b) != "x" {
		t.Errorf("Find = %q %v %v", b, found, err)
	}
	if _, ok := m.ObserveStore(&store.Redis{}).(scs.CtxStore); !ok {
		t.Error("redis: no context methods")
	}
}

// failingBackend fails once and lock; the other methods are not called.
type failingBackend struct{ store.Backend }

var errDown = errors.New("store down")

func (failingBackend) Once(context.Context, string, time.Duration) (bool, error) {
	return false, errDown
}
func (failingBackend) Lock(context.Context, string, time.Duration) (func(), bool, error) {
	return nil, false, errDown
}
func (failingBackend) IndexTokens(context.Context, string) ([]string, error) {
	return []string{"a"}, nil
}

func TestObservedBackend(t *testing.T) {
	m, err := metrics.New(nil, func() *providers.Registry { return nil })
	if err != nil {
		t.Fatal(err)
	}
	b := m.ObserveBackend(failingBackend{})
	ctx := context.Background()
	if _, err := b.Once(ctx, "k", time.Second); !errors.Is(err, errDown) {
		t.Errorf("once: %v", err)
	}
	if release, ok, err := b.Lock(ctx, "k", time.Second); release != nil || ok || !errors.Is(err, errDown) {
		t.Errorf("lock: %v %v", ok, err)
	}
	if toks, err := b.IndexTokens(ctx, "k"); err != nil || len(toks) != 1 {
		t.Errorf("indexTokens: %v %v", toks, err)
	}
	s := &Server{metrics: m}
	expect(t, scrape(t, s), map[string]float64{
		`oidc_broker_session_store_errors_total{op="once"}`:                   1,
		`oidc_broker_session_store_errors_total{op="lock"}`:                   1,
		`oidc_broker_session_store_duration_seconds_count{op="index_tokens"}`: 1,
	})
	if v := scrape(t, s)[`oidc_broker_session_store_errors_total{op="index_tokens"}`]; v != 0 {
		t.Errorf("a successful operation was counted as an error: %v", v)
	}

	// A lock that was taken is timed when released.
	raw := store.NewMemoryBackend(time.Now)
	mem := m.ObserveBackend(raw)
	if metrics.Unobserved(mem) != store.Backend(raw) || metrics.Unobserved(raw) != store.Backend(raw) {
		t.Error("Unobserved does not find the store")
	}
	release, ok, err := mem.Lock(ctx, "k", time.Minute)
	if !ok || err != nil {
		t.Fatalf("lock: %v %v", ok, err)
	}
	release()
	if _, ok2, _ := mem.Lock(ctx, "k", time.Minute); !ok2 {
		t.Error("the wrapped release did not release")
	}
	expect(t, scrape(t, s), map[string]float64{`oidc_broker_session_store_duration_seconds_count{op="unlock"}`: 1})
}

// TestStoreMetricsJournalEntries: a sign-out that no replica confirms
// (wait.replicas 1, a Redis without replicas) is kept in the journal, and
// oidc_broker_session_store_journal_entries counts it.
func TestStoreMetricsJournalEntries(t *testing.T) {
	one := 1
	e := newRedisEnv(t, redisserver.Start(t), withConfig(func(c *Config) {
		c.Session.Redis.Wait = store.WaitConfig{Replicas: &one, Timeout: 50 * time.Millisecond}
	}))
	expect(t, scrape(t, e.server), map[string]float64{`oidc_broker_session_store_journal_entries`: 0})
	e.login("alpha", "alice", "/")
	e.signOut(e.client, "/").Body.Close()
	if n := scrape(t, e.server)[`oidc_broker_session_store_journal_entries`]; n < 1 {
		t.Errorf("journal entries after an unconfirmed sign-out: %v, want at least 1", n)
	}
}
