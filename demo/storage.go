package demo

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/url"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// scopeGroups is the custom scope that asks for the `groups` claim ("profile" does too).
const scopeGroups = "groups"

// idpStorage is the example storage of the zitadel module (auth requests, codes, tokens,
// signing key) with the demo's users and clients and the `groups` claim.
type idpStorage struct {
	*storage.Storage
	users   userStore
	clients map[string]*registeredClient

	mu          sync.Mutex
	tokenScopes map[string]grantedScopes // access token ID → scopes, for the userinfo endpoint
}

type grantedScopes struct {
	scopes  []string
	expires time.Time
}

var (
	_ opStorage         = (*idpStorage)(nil)
	_ storage.UserStore = userStore{}
	_ op.Client         = (*registeredClient)(nil)
)

func newIDPStorage(users []User, clients []Client, idTokenLifetime time.Duration) *idpStorage {
	us := userStore{byID: map[string]*User{}, byUsername: map[string]*User{}}
	for i := range users {
		u := &users[i]
		us.byID[u.ID], us.byUsername[u.Username] = u, u
	}
	cs := map[string]*registeredClient{}
	for _, c := range clients {
		cs[c.ID] = &registeredClient{cfg: c, method: oidc.AuthMethod(authMethodOrDefault(c.AuthMethod)),
			idTokenLifetime: idTokenLifetime}
	}
	return &idpStorage{
		// The example storage gets no clients of its own: GetClientByClientID and
		// AuthorizeClientIDSecret below answer from ours.
		Storage:     storage.NewStorageWithClients(us, map[string]*storage.Client{}),
		users:       us,
		clients:     cs,
		tokenScopes: map[string]grantedScopes{},
	}
}

// redirectURIs lists every client's redirect URIs.
func (s *idpStorage) redirectURIs() []string {
	var uris []string
	for _, c := range s.clients {
		uris = append(uris, c.RedirectURIs()...)
	}
	return uris
}

// GetClientByClientID implements op.Storage with the configured clients.
func (s *idpStorage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	c, ok := s.clients[clientID]
	if !ok {
		return nil, errors.New("demo: client not found")
	}
	return c, nil
}

// AuthorizeClientIDSecret implements op.Storage. Public clients have no secret to check and
// are always refused here.
func (s *idpStorage) AuthorizeClientIDSecret(_ context.Context, clientID, clientSecret string) error {
	c, ok := s.clients[clientID]
	if !ok || c.method == oidc.AuthMethodNone ||
		subtle.ConstantTimeCompare([]byte(clientSecret), []byte(c.cfg.Secret)) != 1 {
		return errors.New("demo: invalid client_id or client_secret")
	}
	return nil
}

// GetKeyByIDAndClientID implements op.Storage. The demo IdP trusts no client keys, which
// refuses the JWT bearer grant and private_key_jwt (the example storage would trust its
// built-in service account, whose private key is public).
func (s *idpStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("demo: JWT client keys are not supported")
}

// GetRefreshTokenInfo implements op.Storage for token revocation. Unlike the example
// storage's, it reads under the storage's lock and finds only the client's own tokens.
func (s *idpStorage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (userID, tokenID string, err error) {
	req, err := s.Storage.TokenRequestByRefreshToken(ctx, token)
	if err != nil || req.GetClientID() != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return req.GetSubject(), token, nil // the example storage's refresh token ID is the token
}

// CreateAccessToken implements op.Storage and remembers the token's scopes.
func (s *idpStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, exp, err := s.Storage.CreateAccessToken(ctx, req)
	if err == nil {
		s.rememberScopes(id, req.GetScopes(), exp)
	}
	return id, exp, err
}

// CreateAccessAndRefreshTokens implements op.Storage and remembers the access token's scopes.
func (s *idpStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, currentRefreshToken string) (string, string, time.Time, error) {
	id, refresh, exp, err := s.Storage.CreateAccessAndRefreshTokens(ctx, req, currentRefreshToken)
	if err == nil {
		s.rememberScopes(id, req.GetScopes(), exp)
	}
	return id, refresh, exp, err
}

func (s *idpStorage) rememberScopes(tokenID string, scopes []string, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for id, g := range s.tokenScopes {
		if now.After(g.expires) {
			delete(s.tokenScopes, id)
		}
	}
	s.tokenScopes[tokenID] = grantedScopes{scopes: slices.Clone(scopes), expires: expires}
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the ID token's claims.
func (s *idpStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	s.addClaims(info, req.GetSubject(), scopes)
	return nil
}

// SetUserinfoFromToken implements op.Storage: the userinfo endpoint's answer.
func (s *idpStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	s.mu.Lock()
	scopes := s.tokenScopes[tokenID].scopes
	s.mu.Unlock()
	s.addClaims(info, subject, scopes)
	return nil
}

// addClaims corrects the profile claims the example storage derives from first and last name,
// sends email_verified=false explicitly (the library omits false) and adds `groups`.
func (s *idpStorage) addClaims(info *oidc.UserInfo, subject string, scopes []string) {
	u := s.users.byID[subject]
	if u == nil {
		return
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" && !u.EmailVerified {
		info.AppendClaims("email_verified", false)
	}
	profile := slices.Contains(scopes, oidc.ScopeProfile)
	if profile {
		info.Name, info.GivenName, info.FamilyName, info.Locale = u.Name, "", "", nil
	}
	if (profile || slices.Contains(scopes, scopeGroups)) && len(u.Groups) > 0 {
		info.AppendClaims("groups", slices.Clone(u.Groups))
	}
}

// userStore implements storage.UserStore over the configured users. It is never modified
// after construction.
type userStore struct {
	byID, byUsername map[string]*User
}

func (us userStore) GetUserByID(id string) *storage.User { return toStorageUser(us.byID[id]) }

func (us userStore) GetUserByUsername(username string) *storage.User {
	return toStorageUser(us.byUsername[username])
}

// ExampleClientID names the example storage's service account; the demo has none.
func (us userStore) ExampleClientID() string { return "" }

func toStorageUser(u *User) *storage.User {
	if u == nil {
		return nil
	}
	return &storage.User{
		ID:            u.ID,
		Username:      u.Username,
		Password:      u.Password,
		FirstName:     u.Name, // addClaims restores `name` and clears `given_name`
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
	}
}

// registeredClient implements op.Client for a configured Client: a web application using the
// authorization code and refresh token grants.
type registeredClient struct {
	cfg             Client
	method          oidc.AuthMethod
	idTokenLifetime time.Duration
}

func (c *registeredClient) GetID() string                    { return c.cfg.ID }
func (c *registeredClient) RedirectURIs() []string           { return c.cfg.RedirectURIs }
func (c *registeredClient) PostLogoutRedirectURIs() []string { return c.cfg.PostLogoutRedirectURIs }
func (c *registeredClient) ApplicationType() op.ApplicationType {
	return op.ApplicationTypeWeb
}
func (c *registeredClient) AuthMethod() oidc.AuthMethod { return c.method }
func (c *registeredClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *registeredClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *registeredClient) LoginURL(id string) string {
	return "/login?authRequestID=" + url.QueryEscape(id)
}
func (c *registeredClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *registeredClient) IDTokenLifetime() time.Duration      { return c.idTokenLifetime }
func (c *registeredClient) DevMode() bool                       { return false }

// RestrictAdditionalIdTokenScopes and RestrictAdditionalAccessTokenScopes restrict nothing.
// (The op calls the returned function unconditionally, so it must not be nil.)
func (c *registeredClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}
func (c *registeredClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

// IsScopeAllowed allows the custom scope "groups" besides the standard OIDC scopes.
func (c *registeredClient) IsScopeAllowed(scope string) bool { return scope == scopeGroups }

// IDTokenUserinfoClaimsAssertion puts the profile and email claims into the ID token too.
func (c *registeredClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *registeredClient) ClockSkew() time.Duration             { return 0 }
