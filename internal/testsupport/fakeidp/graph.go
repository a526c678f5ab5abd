package fakeidp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
)

// Graph is a fake Microsoft Graph for the users of one fake Entra ID: it
// accepts only the access tokens that Entra issued and answers, for the
// signed-in user (/me), the two calls that resolve a groups overage:
//
//   - POST /v1.0/me/getMemberObjects {"securityEnabledOnly": bool}: the
//     ids of the user's groups, in one answer;
//   - GET /v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=...&$top=N:
//     the groups with their displayName, N at a time (default 100), the
//     next page in @odata.nextLink.
type Graph struct {
	URL string
	// Entra is the fake Entra ID whose access tokens are accepted.
	Entra *OP

	mu sync.Mutex
	// fail, when not 0, is the status every call answers.
	fail int
	// namesForbidden answers transitiveMemberOf 403, as Graph does when
	// the app lacks GroupMember.Read.All.
	namesForbidden bool
	// nextHost, when set, points @odata.nextLink at another host.
	nextHost string
	calls    []string
	srv      *httptest.Server
}

// NewGraph serves a fake Microsoft Graph for entra's users.
func NewGraph(entra *OP) *Graph {
	g := &Graph{Entra: entra}
	g.srv = httptest.NewServer(g)
	g.URL = g.srv.URL
	return g
}

// Close stops the server.
func (g *Graph) Close() { g.srv.Close() }

// Fail makes every call answer status (0: answer normally).
func (g *Graph) Fail(status int) { g.mu.Lock(); g.fail = status; g.mu.Unlock() }

// ForbidNames makes transitiveMemberOf answer 403 Authorization_RequestDenied.
func (g *Graph) ForbidNames() { g.mu.Lock(); g.namesForbidden = true; g.mu.Unlock() }

// NextLinksTo makes @odata.nextLink point at host (a hostile Graph).
func (g *Graph) NextLinksTo(host string) { g.mu.Lock(); g.nextHost = host; g.mu.Unlock() }

// Calls lists the calls so far, as "METHOD path?query".
func (g *Graph) Calls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.calls...)
}

func (g *Graph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.calls = append(g.calls, r.Method+" "+r.URL.RequestURI())
	fail, forbidden, nextHost := g.fail, g.namesForbidden, g.nextHost
	g.mu.Unlock()
	u, ok := g.Entra.Token(bearer(r))
	switch {
	case !ok:
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure.")
		return
	case fail != 0:
		graphError(w, fail, "serviceNotAvailable", "The service is unavailable.")
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1.0/me/getMemberObjects":
		var body struct {
			SecurityEnabledOnly *bool `json:"securityEnabledOnly"`
		}
		if json.NewDecoder(r.Body).Decode(&body) != nil || body.SecurityEnabledOnly == nil {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "securityEnabledOnly is required.")
			return
		}
		ids := []string{}
		for _, grp := range u.Groups {
			ids = append(ids, grp.ID)
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)", "value": ids})
	case r.Method == http.MethodGet && r.URL.Path == "/v1.0/me/transitiveMemberOf/microsoft.graph.group":
		if forbidden {
			graphError(w, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
			return
		}
		g.groupPage(w, r, u, nextHost)
	default:
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource not found.")
	}
}

// groupPage answers one page of transitiveMemberOf; $skiptoken is the
// offset (opaque at the real Graph).
func (g *Graph) groupPage(w http.ResponseWriter, r *http.Request, u User, nextHost string) {
	q := r.URL.Query()
	top, err := strconv.Atoi(q.Get("$top"))
	if err != nil || top <= 0 || top > 999 {
		top = 100
	}
	skip, _ := strconv.Atoi(q.Get("$skiptoken"))
	end := min(skip+top, len(u.Groups))
	value := []map[string]any{}
	for _, grp := range u.Groups[min(skip, end):end] {
		value = append(value, map[string]any{"@odata.type": "#microsoft.graph.group", "id": grp.ID, "displayName": grp.Name})
	}
	answer := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects(id,displayName)", "value": value}
	if end < len(u.Groups) {
		host := "http://" + r.Host
		if nextHost != "" {
			host = nextHost
		}
		q.Set("$skiptoken", strconv.Itoa(end))
		answer["@odata.nextLink"] = fmt.Sprintf("%s%s?%s", host, r.URL.Path, q.Encode())
	}
	writeJSON(w, http.StatusOK, answer)
}

func graphError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": message,
		"innerError": map[string]any{"request-id": "00000000-0000-0000-0000-000000000000"}}})
}
