package broker

import (
	"net/http"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// TestBearerEntraTenantAdmission: an Entra ID provider for the
// tenants [A] (tenant: organizations) admits users of tenant A only; the
// tenant check is the preset's Complete hook, which a bearer token never
// runs. A token of tenant B for the API is accepted.
func TestBearerEntraTenantAdmission(t *testing.T) {
	f := &presetIdPs{}
	opt := func(c *envConfig) {
		withPresets(t, f)(c)
		inner := c.more[len(c.more)-1]
		c.more[len(c.more)-1] = func(b string) []providers.Config {
			ps := inner(b)
			for i := range ps {
				if ps[i].ID == "entra" {
					ps[i].APITokens = &providers.APITokensConfig{Audiences: []string{"api://reports"}}
				}
			}
			return ps
		}
	}
	e := newEnv(t, opt)
	now := time.Now()
	tok := f.entra.Mint(map[string]any{"iss": f.entra.Issuer(presetTenantB), "tid": presetTenantB, "sub": "mallory-sub", "oid": "oid-mallory",
		"aud": "api://reports", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(), "scp": "read", "ver": "2.0"})
	resp := e.request(nil, http.MethodGet, "/hello", bearerHeader(tok))
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		t.Errorf("a token of tenant B (not in tenants) was accepted: %d", resp.StatusCode)
	}
	// Control: the same token from the admitted tenant A.
	okTok := f.entra.Mint(map[string]any{"iss": f.entra.Issuer(presetTenantA), "tid": presetTenantA, "sub": "alice-sub", "oid": "oid-alice",
		"aud": "api://reports", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(), "scp": "read", "ver": "2.0"})
	if resp := e.request(nil, http.MethodGet, "/hello", bearerHeader(okTok)); resp.StatusCode != http.StatusOK {
		t.Errorf("control: the token of the admitted tenant A was refused: %d", resp.StatusCode)
	}
}
