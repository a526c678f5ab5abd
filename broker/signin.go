package broker

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/pages"
	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/selection"
)

// The sign-in page's wiring. Package selection renders the page and makes
// its choices (home-realm discovery, search, groups); this file gives it the
// providers, each request's facts and URLs (all from originOf), follows its
// choices with redirects, serves its assets and keeps the last-used cookie.

// handleSignIn renders the selection page, or skips it: ?idp= names an
// available provider, the email typed into the page (?login=) has a
// provider's domain (its login_hint is passed on), or the only provider is
// chosen automatically (selection.auto_redirect). ?rd= is validated and
// carried into every start URL. A notice, not an error status, explains an
// unknown provider or domain.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	q := r.URL.Query()
	rd := o.safeRedirect(q.Get("rd"))
	cat := s.catalog
	startBase, rdQuery := o.Path("/oauth2/start/"), "?rd="+url.QueryEscape(rd)
	// "Keep me signed in" (session.persistent_max): the page's checkbox
	// reloads it with remember=1, and every way to a provider carries it.
	remember := s.sessions.PersistentMax() > 0 && q.Get("remember") == "1"
	if remember {
		rdQuery += "&remember=1"
	}
	// The page writes its links from these two (selection.Links), and
	// keeps them written between requests; start is the same URL.
	links := selection.Links{SignIn: o.Path("/oauth2/sign_in"), Static: o.Path("/oauth2/static/"), StartBase: startBase, StartQuery: rdQuery}
	start := links.StartURL
	redirect := func(id, loginHint string) {
		u := start(id)
		if loginHint != "" {
			u += "&login_hint=" + url.QueryEscape(loginHint)
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u, http.StatusFound)
	}

	var notice selection.Notice
	switch {
	case q.Has("idp"):
		id := q.Get("idp")
		if p, ok := s.registry.Get(id); !ok {
			notice = selection.Notice{Kind: selection.UnknownProvider, Value: id}
		} else if !p.Status().Available {
			notice = selection.Notice{Kind: selection.ProviderUnavailable, Value: id}
		} else {
			redirect(id, q.Get("login_hint"))
			return
		}
	case q.Has("login"):
		login := strings.TrimSpace(q.Get("login"))
		id, domain, found := cat.Discover(login)
		p, ok := s.registry.Get(id)
		switch {
		case found && ok && p.Status().Available:
			redirect(id, login)
			return
		case found:
			notice = selection.Notice{Kind: selection.ProviderUnavailable, Value: id}
		case domain == "":
			notice = selection.Notice{Kind: selection.NoDomain, Value: login}
		default:
			notice = selection.Notice{Kind: selection.UnknownDomain, Value: domain}
		}
	case s.selection.AutoRedirect() && !q.Has("q"):
		if all := s.registry.All(); len(all) == 1 && all[0].Status().Available {
			redirect(all[0].ID(), "")
			return
		}
	}

	req := selection.Request{
		AcceptLanguage: r.Header.Get("Accept-Language"),
		Links:          links,
		Status:         s.providerStatus,
		RD:             rd,
		Query:          q.Get("q"),
		Login:          q.Get("login"),
		Notice:         notice,
		LastUsed:       s.lastUsedProvider(r, o),
		OfferRemember:  s.sessions.PersistentMax() > 0,
		Remember:       remember,
	}
	var buf bytes.Buffer
	if err := s.selection.Render(&buf, cat, req); err != nil {
		s.log.ErrorContext(r.Context(), "render selection page", "error", err)
		s.renderError(w, r, errorPage{Status: http.StatusInternalServerError, Title: "page_error_title", Message: "page_error"})
		return
	}
	h := w.Header()
	// The page's own script (live search) is served from /oauth2/static/.
	pages.SetHeaders(h, s.selection.StyleSrc(), o.String())
	h.Set("Content-Security-Policy", pages.CSP(s.selection.StyleSrc(), o.String(), "'self'"))
	h.Add("Vary", "Accept-Language")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = buf.WriteTo(w)
}

// providerStatus is a provider's availability for the page.
func (s *Server) providerStatus(id string) selection.Status {
	p, ok := s.registry.Get(id)
	if !ok {
		return selection.Status{Reason: "not configured"}
	}
	st := p.Status()
	return selection.Status{Available: st.Available, Reason: st.Reason}
}

// newCatalog prepares the page's providers once, at start-up (icons are read
// here, so a bad icon fails the start): the registry's providers in order,
// with the page's settings (domains, icon, group) from the configuration. A
// registry given in Options may have providers without configuration; they
// get their name only.
func (s *Server) newCatalog() (*selection.Catalog, error) {
	cfgs := make(map[string]providers.Config, len(s.cfg.Providers))
	for _, c := range s.cfg.Providers {
		cfgs[c.ID] = c
	}
	all := s.registry.All()
	ps := make([]selection.Provider, len(all))
	for i, p := range all {
		c := cfgs[p.ID()]
		ps[i] = selection.Provider{ID: p.ID(), Name: p.Name(), Group: c.Group, Domains: c.Domains, Icon: c.Icon}
	}
	return selection.NewCatalog(ps)
}

// handleStatic serves the page's assets from memory: provider icons, the
// logo, the script. A URL with the current ?v= hash is cached for a year;
// others are revalidated. An SVG cannot run script: its CSP forbids it.
func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := s.selection.Asset(s.catalog, r.PathValue("asset"))
	if !ok {
		s.handleNotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	// same-site: a forward-auth 403 on an application's origin shows the logo.
	h.Set("Cross-Origin-Resource-Policy", "same-site")
	h.Set("ETag", `"`+a.Hash+`"`)
	if r.URL.Query().Get("v") == a.Hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.Data))
}

// The last-used cookie remembers which provider a browser chose, so the
// page can offer it first ("Continue with …"). Its value is the provider id
// and an HMAC-SHA256 of it, so a client cannot make the page offer anything
// else; an unknown or tampered value is ignored. The key is
// selection.last_used_key, or a random one per process.
const (
	lastUsedSuffix = "_last_idp"
	lastUsedMaxAge = 90 * 24 * time.Hour
	lastUsedMAC    = "oidc-broker last-used provider\x00"
)

var processLastUsedKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	return k
}()

// rememberProvider sets the last-used cookie for provider id. handleStart
// calls it when a login begins.
func (s *Server) rememberProvider(w http.ResponseWriter, r *http.Request, id string) {
	c := s.lastUsedCookie(s.originOf(r))
	c.Value = id + "." + s.lastUsedSignature(id)
	c.MaxAge = int(lastUsedMaxAge / time.Second)
	w.Header().Add("Set-Cookie", c.String())
}

// lastUsedProvider returns the provider id of a valid last-used cookie that
// names a configured provider, or "".
func (s *Server) lastUsedProvider(r *http.Request, o origin) string {
	c, err := r.Cookie(s.lastUsedCookie(o).Name)
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 {
		return ""
	}
	id, sig := c.Value[:i], c.Value[i+1:]
	if !hmac.Equal([]byte(sig), []byte(s.lastUsedSignature(id))) {
		return ""
	}
	if _, ok := s.registry.Get(id); !ok {
		return ""
	}
	return id
}

func (s *Server) lastUsedSignature(id string) string {
	key := processLastUsedKey
	if k := s.cfg.Selection.LastUsedKey; k != "" {
		key = []byte(k)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(lastUsedMAC + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// lastUsedCookie is the cookie's name and attributes for an origin: scoped
// to the broker's /oauth2/ paths (so it never reaches the upstream app),
// HttpOnly, SameSite=Lax, and Secure with the __Secure- prefix behind https.
func (s *Server) lastUsedCookie(o origin) http.Cookie {
	name := s.sessions.BaseName() + lastUsedSuffix
	if o.Secure() {
		name = "__Secure-" + name
	}
	return o.cookieScope().Cookie(name)
}

// selectionProblems validates the sign-in page's settings: the selection
// section (its featured ids name configured providers), and each
// provider's domains, icon and group (a domain claimed by two providers
// names both).
func (c Config) selectionProblems() []error {
	errs := prefixed("selection.", c.Selection.Validate())
	ps := make([]selection.Provider, len(c.Providers))
	ids := make(map[string]bool, len(c.Providers))
	for i, p := range c.Providers {
		ps[i] = selection.Provider{ID: p.ID, Name: p.Name, Group: p.Group, Domains: p.Domains, Icon: p.Icon}
		ids[p.ID] = true
	}
	for i, id := range c.Selection.Featured {
		if id != "" && !ids[id] {
			errs = append(errs, fmt.Errorf("selection.featured[%d]: %q is not the id of a configured provider", i, id))
		}
	}
	return append(errs, prefixed("providers", selection.CheckProviders(ps))...)
}

// selectionWarnings are the page's valid but doubtful settings.
func (c Config) selectionWarnings() []string {
	var w []string
	for _, s := range c.Selection.Warnings() {
		w = append(w, fmt.Sprintf("selection.%s", s))
	}
	return w
}
