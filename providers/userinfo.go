package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// maxUserinfo bounds a userinfo response.
const maxUserinfo = 1 << 20

// userinfo calls the userinfo endpoint (OpenID Connect Core §5.3) and returns
// its claims. zitadel's rp.Userinfo reads JSON only; IdPs may also answer
// with a signed JWT (application/jwt), whose signature is verified with the
// IdP's keys through zitadel's key set, and whose iss and aud, when present,
// must name the IdP and this client. Either way the sub must equal the ID
// token's.
func (p *oidcProvider) userinfo(ctx context.Context, c *oidcClient, accessToken, tokenType, sub string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.rp.UserinfoEndpoint(), nil)
	if err != nil {
		return nil, err
	}
	if tokenType == "" {
		tokenType = "Bearer"
	}
	req.Header.Set("Authorization", tokenType+" "+accessToken)
	req.Header.Set("Accept", "application/json, application/jwt")
	resp, err := c.rp.HttpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserinfo))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var claims map[string]any
	switch mediaType {
	case "application/jwt":
		claims, err = p.verifySignedUserinfo(ctx, c, strings.TrimSpace(string(body)))
	default:
		err = json.Unmarshal(body, &claims)
	}
	if err != nil {
		return nil, err
	}
	if s, _ := claims["sub"].(string); s != sub {
		return nil, ErrUserinfoSubject
	}
	return claims, nil
}

func (p *oidcProvider) verifySignedUserinfo(ctx context.Context, c *oidcClient, raw string) (map[string]any, error) {
	algs := make([]jose.SignatureAlgorithm, 0, len(c.rp.IDTokenVerifier().SupportedSignAlgs))
	for _, a := range c.rp.IDTokenVerifier().SupportedSignAlgs {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return nil, fmt.Errorf("signed userinfo: %w", err)
	}
	payload, err := c.rp.IDTokenVerifier().KeySet.VerifySignature(ctx, jws)
	if err != nil {
		return nil, fmt.Errorf("signed userinfo: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("signed userinfo: %w", err)
	}
	if iss, ok := claims["iss"]; ok && !p.issuerOK(c, fmt.Sprint(iss)) {
		return nil, errors.New("signed userinfo: iss is not the provider's issuer")
	}
	if aud, ok := claims["aud"]; ok && !audienceContains(aud, p.cfg.ClientID) {
		return nil, errors.New("signed userinfo: aud does not contain the client_id")
	}
	return claims, nil
}

func audienceContains(aud any, clientID string) bool {
	switch a := aud.(type) {
	case string:
		return a == clientID
	case []any:
		return slices.ContainsFunc(a, func(v any) bool { return v == clientID })
	}
	return false
}
