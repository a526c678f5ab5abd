package fakeidp

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// GitHub is a fake GitHub: the OAuth app endpoints
// (/login/oauth/authorize, /login/oauth/access_token, form-encoded
// answers unless JSON is asked for, errors with status 200 as GitHub sends
// them) and the REST API's /user, /user/emails, /user/orgs and /user/teams,
// paged with per_page and page and a Link header (rel="next", "last").
// The API is at the server's root, as api.github.com's, or with
// Enterprise under /api/v3, as a GitHub Enterprise Server's.
type GitHub struct {
	URL string
	// Enterprise serves the API under /api/v3 (GitHub Enterprise Server).
	Enterprise bool
	Client     Client

	mu sync.Mutex
	// maxPerPage caps per_page (GitHub: 100).
	maxPerPage int
	// linkHost, when set, points Link headers at another host.
	linkHost string
	// emailsStatus, when not 0, is /user/emails' answer (403: a GitHub
	// App without the email permission).
	emailsStatus int
	users        map[string]GitHubUser
	codes        map[string]ghGrant
	tokens       map[string]GitHubUser
	calls        []string
	srv          *httptest.Server
}

// GitHubUser is an account at the fake GitHub.
type GitHubUser struct {
	ID    int64
	Login string
	Name  string
	// Email is the public email of /user (any address the user typed).
	Email  string
	Emails []GitHubEmail
	Orgs   []string
	Teams  []GitHubTeam
}

// GitHubEmail is an entry of /user/emails.
type GitHubEmail struct {
	Email             string
	Primary, Verified bool
}

// GitHubTeam is a team, in an organisation.
type GitHubTeam struct {
	Org, Slug string
}

type ghGrant struct {
	user      GitHubUser
	challenge string
	redirect  string
}

// NewGitHub serves a fake GitHub (enterprise: GitHub Enterprise Server
// paths) for the client c.
func NewGitHub(c Client, enterprise bool) *GitHub {
	g := &GitHub{Enterprise: enterprise, Client: c, maxPerPage: 100,
		users: map[string]GitHubUser{}, codes: map[string]ghGrant{}, tokens: map[string]GitHubUser{}}
	g.srv = httptest.NewServer(g)
	g.URL = g.srv.URL
	return g
}

// Close stops the server.
func (g *GitHub) Close() { g.srv.Close() }

// APIURL is the REST API's base URL.
func (g *GitHub) APIURL() string {
	if g.Enterprise {
		return g.URL + "/api/v3"
	}
	return g.URL
}

// AddUser adds (or replaces) an account; its Login selects it at the
// authorization endpoint (login_hint).
func (g *GitHub) AddUser(u GitHubUser) { g.set(func() { g.users[u.Login] = u }) }

// MaxPerPage caps the page size, to make short lists span pages.
func (g *GitHub) MaxPerPage(n int) { g.set(func() { g.maxPerPage = n }) }

// LinksTo points the Link headers at host (a hostile API).
func (g *GitHub) LinksTo(host string) { g.set(func() { g.linkHost = host }) }

// EmailsAnswer makes /user/emails answer status (0: normally).
func (g *GitHub) EmailsAnswer(status int) { g.set(func() { g.emailsStatus = status }) }

// Calls lists the API calls so far, as paths with their query.
func (g *GitHub) Calls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.calls...)
}

func (g *GitHub) set(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f()
}

func (g *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/login/oauth/authorize":
		g.authorize(w, r)
		return
	case "/login/oauth/access_token":
		g.accessToken(w, r)
		return
	}
	path := r.URL.Path
	if g.Enterprise {
		var ok bool
		if path, ok = strings.CutPrefix(path, "/api/v3"); !ok {
			http.NotFound(w, r)
			return
		}
	}
	g.api(w, r, path)
}

func (g *GitHub) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != g.Client.ID || q.Get("redirect_uri") != g.Client.RedirectURI {
		http.Error(w, "The redirect_uri MUST match the registered callback URL for this application.", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	u, ok := g.users[q.Get("login_hint")]
	answer := url.Values{"state": {q.Get("state")}}
	if ok {
		code := randomString()
		g.codes[code] = ghGrant{user: u, challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		answer.Set("code", code)
	} else {
		answer.Set("error", "access_denied")
	}
	g.mu.Unlock()
	http.Redirect(w, r, g.Client.RedirectURI+"?"+answer.Encode(), http.StatusFound)
}

// accessToken answers as GitHub does: form-encoded unless the client asks
// for JSON, and with status 200 also for errors.
func (g *GitHub) accessToken(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	answer := url.Values{}
	g.mu.Lock()
	code := r.PostForm.Get("code")
	grant, ok := g.codes[code]
	delete(g.codes, code)
	switch {
	case id != g.Client.ID || secret != g.Client.Secret:
		answer.Set("error", "incorrect_client_credentials")
	case !ok || grant.redirect != r.PostForm.Get("redirect_uri"):
		answer.Set("error", "bad_verification_code")
	case grant.challenge != "" && s256(r.PostForm.Get("code_verifier")) != grant.challenge:
		answer.Set("error", "bad_verification_code")
	default:
		tok := "gho_" + randomString()
		g.tokens[tok] = grant.user
		answer = url.Values{"access_token": {tok}, "scope": {"read:org,read:user,user:email"}, "token_type": {"bearer"}}
	}
	g.mu.Unlock()
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		flat := map[string]string{}
		for k := range answer {
			flat[k] = answer.Get(k)
		}
		writeJSON(w, http.StatusOK, flat)
		return
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	_, _ = w.Write([]byte(answer.Encode()))
}

func (g *GitHub) api(w http.ResponseWriter, r *http.Request, path string) {
	g.mu.Lock()
	g.calls = append(g.calls, r.URL.RequestURI())
	u, ok := g.tokens[bearer(r)]
	emailsStatus := g.emailsStatus
	g.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials",
			"documentation_url": "https://docs.github.com/rest"})
		return
	}
	switch path {
	case "/user":
		writeJSON(w, http.StatusOK, map[string]any{"login": u.Login, "id": u.ID, "node_id": "U_" + u.Login,
			"type": "User", "name": u.Name, "email": nilIfEmpty(u.Email)})
	case "/user/emails":
		if emailsStatus != 0 {
			writeJSON(w, emailsStatus, map[string]string{"message": "Resource not accessible by integration"})
			return
		}
		var items []any
		for _, e := range u.Emails {
			items = append(items, map[string]any{"email": e.Email, "primary": e.Primary, "verified": e.Verified, "visibility": "private"})
		}
		g.page(w, r, items)
	case "/user/orgs":
		var items []any
		for _, o := range u.Orgs {
			items = append(items, map[string]any{"login": o, "id": len(o), "url": g.APIURL() + "/orgs/" + o})
		}
		g.page(w, r, items)
	case "/user/teams":
		var items []any
		for _, t := range u.Teams {
			items = append(items, map[string]any{"slug": t.Slug, "name": t.Slug, "organization": map[string]any{"login": t.Org}})
		}
		g.page(w, r, items)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	}
}

// page answers one page of items, with GitHub's Link header.
func (g *GitHub) page(w http.ResponseWriter, r *http.Request, items []any) {
	q := r.URL.Query()
	g.mu.Lock()
	maxPerPage, linkHost := g.maxPerPage, g.linkHost
	g.mu.Unlock()
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage <= 0 {
		perPage = 30
	}
	perPage = min(perPage, maxPerPage)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max(1, (len(items)+perPage-1)/perPage)
	start := min((page-1)*perPage, len(items))
	end := min(start+perPage, len(items))
	host := "http://" + r.Host
	if linkHost != "" {
		host = linkHost
	}
	link := func(p int, rel string) string {
		q.Set("page", strconv.Itoa(p))
		return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, host, r.URL.Path, q.Encode(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(page-1, "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	out := items[start:end]
	if out == nil {
		out = []any{}
	}
	writeJSON(w, http.StatusOK, out)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
