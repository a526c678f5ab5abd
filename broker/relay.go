package broker

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/relay"
	"github.com/oidc-broker/oidc-broker/providers"
)

// AssertionConfig configures the signed identity assertion
// (relay.AssertionConfig).
type AssertionConfig = relay.AssertionConfig

// Assertion defaults.
const (
	DefaultAssertionLifetime = relay.DefaultAssertionLifetime
	DefaultAssertionAudience = relay.DefaultAssertionAudience
)

// The identity headers relayed to apps (and on /oauth2/auth); package
// relay makes them.
const (
	HeaderUser              = relay.HeaderUser
	HeaderEmail             = relay.HeaderEmail
	HeaderPreferredUsername = relay.HeaderPreferredUsername
	HeaderGroups            = relay.HeaderGroups
	HeaderProvider          = relay.HeaderProvider
	HeaderName              = relay.HeaderName
	HeaderGroupsIncomplete  = relay.HeaderGroupsIncomplete
)

// relayIdentity writes what an app receives about the signed-in user into h
// (request headers for the upstream, response headers on forward-auth):
// the identity headers and, when enabled, the signed assertion for the app
// identified by audience (the configured assertion.audience when empty),
// issued by the broker's external origin for r. Every relay path goes
// through here.
func (s *Server) relayIdentity(h http.Header, r *http.Request, id providers.Identity, audience string) {
	s.relayWith(h, r, id, nil, audience)
}

// relayWith is relayIdentity with id's header values made before (pre: a
// peeked session's, session.View), or nil to make them.
func (s *Server) relayWith(h http.Header, r *http.Request, id providers.Identity, pre *relay.Headers, audience string) {
	o := origin{}
	if s.assertion != nil { // the assertion's issuer
		o = s.originOf(r)
	}
	s.relayFor(h, o, id, pre, audience)
}

// relayFor is relayWith for a request whose external origin is o.
func (s *Server) relayFor(h http.Header, o origin, id providers.Identity, pre *relay.Headers, audience string) {
	if pre != nil {
		pre.Set(h)
	} else {
		relay.SetIdentityHeaders(h, id)
	}
	if s.assertion == nil {
		return
	}
	tok, err := s.assertion.Token(o.String(), audience, id)
	if err != nil {
		h.Del(s.assertion.Header())
		s.log.Error("assertion not sent", "user", id.User(), "error", err)
		return
	}
	h.Set(s.assertion.Header(), tok)
}

// relayHeadersOf is the sessions' derive function: a decoded identity's
// relay headers, made once per decoding and shared by every request that
// reads the same session (relay.Headers.Set never lets them be changed).
func relayHeadersOf(id providers.Identity) any {
	h := relay.HeadersOf(id)
	return &h
}

// handleJWKS serves the assertion's public keys at /oauth2/jwks and
// /.well-known/jwks.json (relay.Signer.ServeJWKS). Without the assertion,
// /oauth2/jwks is not found and /.well-known/jwks.json is the app's.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if s.assertion == nil {
		if strings.HasPrefix(r.URL.Path, "/oauth2/") {
			s.handleNotFound(w, r)
		} else {
			s.app.ServeHTTP(w, r)
		}
		return
	}
	s.assertion.ServeJWKS(w, r)
}

// handleUserinfo returns the normalized identity as JSON, for UIs that show
// who is signed in.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	id, ok := s.sessionIdentity(r) // refresh.go: renews expired tokens
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"not signed in"}` + "\n"))
		return
	}
	_ = json.NewEncoder(w).Encode(struct {
		User string `json:"user"`
		providers.Identity
	}{id.User(), id})
}
