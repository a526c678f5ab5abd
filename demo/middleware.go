package demo

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/oidc-broker/oidc-broker/formbody"
)

// enforceTokenAuthMethod refuses token requests whose client authentication differs from the
// client's registered method. The op library accepts a secret from either the Authorization
// header or the form for any secret-based client, so without this a broker sending the wrong
// method would go unnoticed.
//
// Rules (RFC 6749 §2.3.1, OIDC Core §9):
//   - client_secret_basic: an Authorization: Basic header, no client_secret in the form;
//   - client_secret_post: client_id and client_secret in the form, no Authorization header;
//   - none: client_id in the form, no Authorization header, no client_secret, and for the
//     authorization_code grant a code_verifier.
//
// Client assertions (private_key_jwt) are refused. Failures answer 401 invalid_client.
func enforceTokenAuthMethod(st *idpStorage, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				w.Header().Set("Allow", http.MethodPost)
				writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint requires POST")
				return
			}
			form, err := formbody.Read(w, r, maxLoginForm)
			if err != nil {
				writeOAuthError(w, formbody.Status(err), "invalid_request", "cannot read the form")
				return
			}
			// The op parses no further: it finds the body's fields, and only
			// those (RFC 6749 §3.2: token parameters travel in the body).
			r.PostForm, r.Form = form, form
			clientID, problem := checkClientAuth(st, r)
			if problem != "" {
				logger.InfoContext(r.Context(), "demo idp: token request refused",
					"client_id", clientID, "reason", problem)
				if _, _, basic := r.BasicAuth(); basic {
					w.Header().Set("WWW-Authenticate", `Basic realm="demo idp"`)
				}
				writeOAuthError(w, http.StatusUnauthorized, "invalid_client", problem)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// checkClientAuth returns the client ID the request names and, if its authentication does not
// match the client's registered method, a description of the problem. It does not check the
// secret itself; the op does that.
func checkClientAuth(st *idpStorage, r *http.Request) (clientID, problem string) {
	form := r.PostForm
	basicID, _, hasBasic := r.BasicAuth()
	if hasBasic {
		if id, err := url.QueryUnescape(basicID); err == nil {
			basicID = id
		}
	}
	formID := form.Get("client_id")
	clientID = formID
	if hasBasic {
		clientID = basicID
	}
	switch {
	case form.Has("client_assertion") || form.Has("client_assertion_type"):
		return clientID, "client assertions (private_key_jwt) are not supported"
	case r.Header.Get("Authorization") != "" && !hasBasic:
		return clientID, "unsupported Authorization scheme"
	case clientID == "":
		return clientID, "no client_id"
	case hasBasic && formID != "" && formID != basicID:
		return clientID, "client_id in the form differs from the Authorization header"
	}
	c, ok := st.clients[clientID]
	if !ok {
		return clientID, "unknown client"
	}
	hasFormSecret := form.Has("client_secret")
	switch c.method {
	case oidc.AuthMethodBasic:
		if !hasBasic {
			return clientID, "client is registered for client_secret_basic: use the Authorization header"
		}
		if hasFormSecret {
			return clientID, "client is registered for client_secret_basic: no client_secret in the form"
		}
	case oidc.AuthMethodPost:
		if hasBasic {
			return clientID, "client is registered for client_secret_post: no Authorization header"
		}
		if !hasFormSecret {
			return clientID, "client is registered for client_secret_post: client_secret missing from the form"
		}
	case oidc.AuthMethodNone:
		if hasBasic || hasFormSecret {
			return clientID, "client is public (none): it must not send a secret"
		}
		if form.Get("grant_type") == string(oidc.GrantTypeCode) && form.Get("code_verifier") == "" {
			return clientID, "client is public (none): code_verifier (PKCE) required"
		}
	}
	return clientID, ""
}

// writeOAuthError writes an RFC 6749 §5.2 error response.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

// issParameterSupported is the RFC 9207 §3 discovery field.
const issParameterSupported = "authorization_response_iss_parameter_supported"

// authorizationResponseIss adds RFC 9207 behaviour in front of the op: the discovery document
// gains "authorization_response_iss_parameter_supported": true, and each redirect (302/303) to
// one of redirectURIs that carries `code` or `error` gains iss=<issuer>. Those redirects come
// from /authorize (errors) and /authorize/callback (after the login page).
func authorizationResponseIss(issuer string, redirectURIs []string) func(http.Handler) http.Handler {
	targets := map[string]bool{}
	for _, u := range redirectURIs {
		targets[withoutQuery(u)] = true
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == oidc.DiscoveryEndpoint {
				serveDiscoveryWithIss(next, w, r)
				return
			}
			next.ServeHTTP(&issRedirectWriter{ResponseWriter: w, issuer: issuer, targets: targets}, r)
		})
	}
}

// serveDiscoveryWithIss runs next into a buffer and adds the RFC 9207 field to a 200 answer.
func serveDiscoveryWithIss(next http.Handler, w http.ResponseWriter, r *http.Request) {
	buf := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	next.ServeHTTP(buf, r)
	body := buf.body.Bytes()
	if buf.status == http.StatusOK {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(body, &doc); err == nil {
			doc[issParameterSupported] = json.RawMessage("true")
			if b, err := json.Marshal(doc); err == nil {
				body = b
			}
		}
	}
	for k, v := range buf.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(buf.status)
	_, _ = w.Write(body)
}

// bufferedResponse is an http.ResponseWriter that keeps the whole response.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}
func (b *bufferedResponse) WriteHeader(status int) {
	if !b.wrote {
		b.status, b.wrote = status, true
	}
}

// issRedirectWriter rewrites the Location of authorization response redirects.
type issRedirectWriter struct {
	http.ResponseWriter
	issuer      string
	targets     map[string]bool
	wroteHeader bool
}

func (w *issRedirectWriter) WriteHeader(status int) {
	if !w.wroteHeader && (status == http.StatusFound || status == http.StatusSeeOther) {
		if loc := w.Header().Get("Location"); loc != "" {
			w.Header().Set("Location", w.addIss(loc))
		}
	}
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *issRedirectWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *issRedirectWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *issRedirectWriter) addIss(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || !w.targets[withoutQuery(loc)] {
		return loc
	}
	q := u.Query()
	if (!q.Has("code") && !q.Has("error")) || q.Has("iss") {
		return loc
	}
	u.RawQuery += "&iss=" + url.QueryEscape(w.issuer)
	return u.String()
}

// withoutQuery drops the query and fragment of a URL string.
func withoutQuery(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.String()
}
