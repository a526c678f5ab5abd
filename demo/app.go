package demo

import (
	"encoding/json"
	"html/template"
	"mime"
	"net/http"
	"slices"
	"strings"
)

// AuthRequestHeaderPrefix is the prefix of the identity headers [NewApp] displays.
const AuthRequestHeaderPrefix = "X-Auth-Request-"

// AppTitle is the title of the page [NewApp] renders.
const AppTitle = "Demo app behind oidc-broker"

// NewApp returns a tiny DEMO-ONLY upstream application to put behind the broker. Every path and
// method gets a page titled [AppTitle] that shows the request method, path and every request
// header whose name starts with [AuthRequestHeaderPrefix] (sorted by name, multiple values
// joined with ", "), with links to "/public/" and "/admins/" (the demo's routes), "/oauth2/userinfo"
// and "/oauth2/sign_out".
//
// A request that accepts application/json gets the same data as JSON:
//
//	{"method":"GET","path":"/","headers":{"X-Auth-Request-Email":"alice@acme.example"}}
//
// The app trusts those headers blindly: it must only be reachable through the broker.
func NewApp() http.Handler {
	return http.HandlerFunc(serveApp)
}

// appData is what the app shows, as HTML or JSON.
type appData struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
}

func serveApp(w http.ResponseWriter, r *http.Request) {
	d := appData{Method: r.Method, Path: r.URL.Path, Headers: map[string]string{}}
	for name, values := range r.Header {
		if strings.HasPrefix(http.CanonicalHeaderKey(name), AuthRequestHeaderPrefix) {
			d.Headers[http.CanonicalHeaderKey(name)] = strings.Join(values, ", ")
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if acceptsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d)
		return
	}

	type header struct{ Name, Value string }
	var headers []header
	for name, value := range d.Headers {
		headers = append(headers, header{name, value})
	}
	slices.SortFunc(headers, func(a, b header) int { return strings.Compare(a.Name, b.Name) })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_ = appTemplate.Execute(w, struct {
		Title, Method, Path string
		Headers             []header
	}{AppTitle, d.Method, d.Path, headers})
}

// acceptsJSON reports whether the Accept header lists application/json.
func acceptsJSON(r *http.Request) bool {
	for _, accept := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(accept, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
				return true
			}
		}
	}
	return false
}

var appTemplate = template.Must(template.New("app").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}
.banner{background:#fff3cd;border:2px solid #b8860b;padding:.5rem 1rem;font-weight:bold}
table{border-collapse:collapse}
th,td{border:1px solid #999;padding:.25rem .6rem;text-align:left;word-break:break-all}
</style>
</head>
<body>
<p class="banner" role="note">DEMO — not for production.</p>
<main>
<h1>{{.Title}}</h1>
<p>Request: <code>{{.Method}} {{.Path}}</code></p>
<h2>Identity headers from the broker</h2>
{{if .Headers}}<table>
<thead><tr><th scope="col">Header</th><th scope="col">Value</th></tr></thead>
<tbody>
{{range .Headers}}<tr><td>{{.Name}}</td><td>{{.Value}}</td></tr>
{{end}}</tbody>
</table>
{{else}}<p>No X-Auth-Request-* headers: this request did not come through the broker.</p>
{{end}}
<nav aria-label="Account">
<ul>
<li><a href="/public/" id="link-public">A public page (anyone)</a></li>
<li><a href="/admins/" id="link-admins">Admins only (group admins: alice)</a></li>
<li><a href="/oauth2/userinfo">Userinfo</a></li>
<li><a href="/oauth2/sign_out">Sign out</a></li>
</ul>
</nav>
</main>
</body>
</html>
`))
