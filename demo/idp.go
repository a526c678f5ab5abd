// Package demo provides DEMO-ONLY building blocks for trying oidc-broker out and for testing it:
// in-process OpenID Providers with a built-in login page ([NewIdP]), a set of demo accounts
// ([DemoUsers]) and a tiny upstream application that shows what the broker forwards ([NewApp]).
//
// Nothing here is meant for production. The demo IdPs keep everything in memory, store
// passwords in plain text, show the demo accounts and their passwords on the login page, and
// accept plain-HTTP issuers. Every page they render says so.
//
// # Scripting a login (for tests)
//
// A demo IdP is an [http.Handler] served at the root of its issuer URL. With an HTTP client that
// does not follow redirects:
//
//  1. GET the authorization URL (…/authorize?client_id=…&redirect_uri=…&…). The answer is a 302
//     to "/login?authRequestID=ID".
//  2. Optionally GET that page: a form titled with [IdPConfig.Title].
//  3. POST "/login" with the form fields id=ID, username=…, password=…. On success the answer is a
//     302 to "<issuer>/authorize/callback?id=ID"; a wrong username or password renders the form
//     again with status 401.
//  4. GET that URL. The answer is a 302 to the client's redirect URI with code and state (and
//     iss, see [IdPConfig.AuthorizationResponseIss]).
//  5. Redeem the code at the token endpoint, authenticating as the client's
//     [Client.AuthMethod] requires.
package demo

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/oidc-broker/oidc-broker/formbody"
	"github.com/oidc-broker/oidc-broker/selection"
)

// User is a demo account at a demo IdP. Passwords are kept and compared in plain text.
type User struct {
	// ID is the OIDC subject (`sub`). Required, unique per IdP, without ':' (the op library
	// uses it as a separator inside access tokens).
	ID string
	// Username is the login name, also sent as `preferred_username` (scope "profile").
	// Required, unique per IdP.
	Username string
	// Password is compared in plain text. Required.
	Password string
	// Name is sent as `name` (scope "profile").
	Name string
	// Email and EmailVerified are sent as `email` and `email_verified` (scope "email").
	Email         string
	EmailVerified bool
	// Groups is sent as the `groups` claim (an array of strings), in the ID token and at the
	// userinfo endpoint, when the scope "groups" or "profile" was granted and the user has
	// at least one group.
	Groups []string
}

// Client is a relying party registered at a demo IdP. All clients may use the authorization
// code grant (response type "code", with or without PKCE) and the refresh token grant.
type Client struct {
	// ID is the client_id. Required, unique per IdP.
	ID string
	// Secret is the client_secret. Required unless AuthMethod is "none", where it must be empty.
	Secret string
	// RedirectURIs are the exact redirect URIs the client may use (http or https). At least one.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the URIs the end_session endpoint may redirect to.
	PostLogoutRedirectURIs []string
	// AuthMethod is how the client authenticates at the token endpoint (RFC 6749 §2.3,
	// OIDC Core §9), and the demo IdP refuses any other way with 401 invalid_client:
	//   - "client_secret_basic" (the default when empty): HTTP Basic auth, no client_secret
	//     in the form;
	//   - "client_secret_post": client_id and client_secret in the form, no Authorization header;
	//   - "none": a public client; client_id in the form, no secret of any kind, and the
	//     authorization code grant requires PKCE (code_verifier).
	AuthMethod string
}

// Token endpoint authentication methods accepted in [Client.AuthMethod].
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
)

// IdPConfig configures one demo IdP. See [NewIdP].
type IdPConfig struct {
	// Issuer is the issuer identifier, e.g. "http://127.0.0.1:9001": an http or https URL with
	// a host and no path (not even "/"), query or fragment. Serve the handler at its root.
	Issuer string
	// Title is shown on the login page, e.g. "Demo IdP A (Acme)". Empty shows the issuer.
	Title string
	// Users are the accounts that can sign in.
	Users []User
	// Clients are the registered relying parties.
	Clients []Client
	// Logger receives the IdP's own logs (sign-ins, refused client authentication).
	// nil discards them. The zitadel op library logs request errors through slog.Default,
	// which this package never changes.
	Logger *slog.Logger
	// AuthorizationResponseIss makes the IdP behave per RFC 9207: discovery advertises
	// "authorization_response_iss_parameter_supported": true and every authorization response
	// redirect to a client (success and error) carries iss=<Issuer>. Responses with
	// response_mode=form_post are not changed.
	AuthorizationResponseIss bool
	// IDTokenLifetime is the lifetime of ID tokens. 0 means one hour.
	IDTokenLifetime time.Duration
	// Look is the page system the login and signed-out pages are drawn
	// in: the broker's (its colours, logo and languages), so that the
	// demo looks like one product. nil is the default look.
	Look *selection.Page
}

// defaultIDTokenLifetime applies when IdPConfig.IDTokenLifetime is 0.
const defaultIDTokenLifetime = time.Hour

// loggedOutPath is where end_session redirects when the client gave no post_logout_redirect_uri.
const loggedOutPath = "/logged-out"

// NewIdP returns the HTTP handler of a DEMO-ONLY OpenID Provider; serve it at the root of
// cfg.Issuer. Besides the provider's endpoints (discovery, /authorize, /oauth/token, /userinfo,
// /keys, /revoke, /end_session, /oauth/introspect) it serves the login page at /login.
//
// It validates cfg first and reports every problem at once, each naming the field, e.g.
// `demo: IdPConfig.Clients[1].AuthMethod: unknown "private_key_jwt"`. The handler is safe for
// concurrent use. Each call generates new signing and token-encryption keys, so tokens of one
// IdP are not accepted by another, nor after a restart.
func NewIdP(cfg IdPConfig) (http.Handler, error) {
	if err := validate(cfg); err != nil {
		return nil, err
	}
	cfg.Users, cfg.Clients = cloneUsers(cfg.Users), cloneClients(cfg.Clients) // callers keep theirs
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	lifetime := cfg.IDTokenLifetime
	if lifetime == 0 {
		lifetime = defaultIDTokenLifetime
	}
	st := newIDPStorage(cfg.Users, cfg.Clients, lifetime)

	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:]) // never fails (crypto/rand, Go ≥ 1.24)
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:                cryptoKey,
		CryptoKeyId:              "demo",
		DefaultLogoutRedirectURI: loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
	}, opView{st}, op.StaticIssuer(cfg.Issuer), op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("demo: creating the OpenID provider: %w", err)
	}

	pg, err := newPages(cfg.Look)
	if err != nil {
		return nil, fmt.Errorf("demo: the pages: %w", err)
	}
	lp := &loginPage{
		pages:    pg,
		title:    cfg.Title,
		users:    cfg.Users,
		storage:  st,
		callback: op.AuthCallbackURL(provider),
		logger:   logger,
	}
	if lp.title == "" {
		lp.title = cfg.Issuer
	}
	issuerInterceptor := op.NewIssuerInterceptor(provider.IssuerFromRequest)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", lp.show)
	mux.HandleFunc("POST /login", issuerInterceptor.HandlerFunc(lp.submit))
	mux.HandleFunc("GET "+loggedOutPath, pg.showLoggedOut)
	mux.HandleFunc("GET /static/{asset}", pg.serveStatic)
	mux.Handle(provider.TokenEndpoint().Relative(), enforceTokenAuthMethod(st, logger)(provider))
	mux.Handle("/", provider)

	var h http.Handler = mux
	if cfg.AuthorizationResponseIss {
		h = authorizationResponseIss(cfg.Issuer, st.redirectURIs())(h)
	}
	// The op parses bodies itself, with FormValue at the token endpoint (the
	// multipart parser): every body must be a small urlencoded form first.
	return formbody.Limit(maxLoginForm)(h), nil
}

// opView is what the op library sees of the storage: op.Storage and the ID token claims hook.
// It hides the example storage's other capabilities (client credentials with a built-in
// service account, token exchange, device flow) so the demo IdP does not offer them.
type opView struct {
	opStorage
}

type opStorage interface {
	op.Storage
	op.CanSetUserinfoFromRequest
}

// validate checks cfg and reports all problems at once.
func validate(cfg IdPConfig) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("demo: IdPConfig.%s: %s", field, fmt.Sprintf(format, args...)))
	}

	if cfg.Issuer == "" {
		bad("Issuer", "must not be empty")
	} else if u, err := url.Parse(cfg.Issuer); err != nil {
		bad("Issuer", "%v", err)
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		bad("Issuer", "%q must be an http(s) URL with a host and no path, query or fragment", cfg.Issuer)
	}
	if cfg.IDTokenLifetime < 0 {
		bad("IDTokenLifetime", "must not be negative")
	}

	userIDs, usernames := map[string]bool{}, map[string]bool{}
	for i, u := range cfg.Users {
		f := fmt.Sprintf("Users[%d]", i)
		switch {
		case u.ID == "":
			bad(f+".ID", "must not be empty")
		case strings.Contains(u.ID, ":"):
			bad(f+".ID", "%q must not contain ':' (the separator in the op's access tokens)", u.ID)
		case userIDs[u.ID]:
			bad(f+".ID", "duplicate %q", u.ID)
		}
		switch {
		case u.Username == "":
			bad(f+".Username", "must not be empty")
		case usernames[u.Username]:
			bad(f+".Username", "duplicate %q", u.Username)
		}
		if u.Password == "" {
			bad(f+".Password", "must not be empty")
		}
		userIDs[u.ID], usernames[u.Username] = true, true
	}

	clientIDs := map[string]bool{}
	for i, c := range cfg.Clients {
		f := fmt.Sprintf("Clients[%d]", i)
		switch {
		case c.ID == "":
			bad(f+".ID", "must not be empty")
		case clientIDs[c.ID]:
			bad(f+".ID", "duplicate %q", c.ID)
		}
		clientIDs[c.ID] = true
		switch c.AuthMethod {
		case "", AuthMethodBasic, AuthMethodPost:
			if c.Secret == "" {
				bad(f+".Secret", "must not be empty for auth method %q", authMethodOrDefault(c.AuthMethod))
			}
		case AuthMethodNone:
			if c.Secret != "" {
				bad(f+".Secret", "must be empty for auth method %q", AuthMethodNone)
			}
		default:
			bad(f+".AuthMethod", "unknown %q (want %q, %q or %q)",
				c.AuthMethod, AuthMethodBasic, AuthMethodPost, AuthMethodNone)
		}
		if len(c.RedirectURIs) == 0 {
			bad(f+".RedirectURIs", "must not be empty")
		}
		for j, ru := range c.RedirectURIs {
			if err := checkRedirectURI(ru); err != nil {
				bad(fmt.Sprintf("%s.RedirectURIs[%d]", f, j), "%v", err)
			}
		}
		for j, ru := range c.PostLogoutRedirectURIs {
			if err := checkRedirectURI(ru); err != nil {
				bad(fmt.Sprintf("%s.PostLogoutRedirectURIs[%d]", f, j), "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

func cloneUsers(users []User) []User {
	users = slices.Clone(users)
	for i := range users {
		users[i].Groups = slices.Clone(users[i].Groups)
	}
	return users
}

func cloneClients(clients []Client) []Client {
	clients = slices.Clone(clients)
	for i := range clients {
		c := &clients[i]
		c.RedirectURIs, c.PostLogoutRedirectURIs = slices.Clone(c.RedirectURIs), slices.Clone(c.PostLogoutRedirectURIs)
	}
	return clients
}

func authMethodOrDefault(m string) string {
	if m == "" {
		return AuthMethodBasic
	}
	return m
}

// checkRedirectURI accepts absolute http(s) URLs without a fragment (RFC 6749 §3.1.2).
func checkRedirectURI(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("%q must be an absolute http(s) URL without a fragment", s)
	}
	return nil
}

// showLoggedOut is the page end_session redirects to when the client named no
// post_logout_redirect_uri.
func (ps *pages) showLoggedOut(w http.ResponseWriter, r *http.Request) {
	d := ps.data(r, "")
	d.Title = d.X["signed_out_title"]
	ps.render(w, http.StatusOK, "logged_out.html", d)
}
