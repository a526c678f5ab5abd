// Command verify-app is a tiny app to put behind oidc-broker: it accepts
// only requests that carry a valid signed identity assertion, and shows the
// identity it states. It is an example of package assertion; see
// docs/assertion.md.
//
// Behind the demo broker (two terminals):
//
//	go run ./cmd/oidc-broker demo --assertion --upstream http://127.0.0.1:8081
//	go run ./examples/verify-app
//
// then open http://127.0.0.1:4180/ and sign in. Opening the app directly,
// http://127.0.0.1:8081/, gets 401: without the broker there is no
// assertion.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/assertion"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	issuer := flag.String("issuer", "http://127.0.0.1:4180", "the broker's public URL (the assertion's iss)")
	audience := flag.String("audience", "", "this app's audience at the broker (default http://<listen>, the upstream URL the broker proxies to)")
	header := flag.String("header", assertion.DefaultHeader, "the request header that carries the assertion")
	flag.Parse()
	if *audience == "" {
		*audience = "http://" + *listen
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	v, err := assertion.NewVerifier(ctx, assertion.Config{
		JWKSURL:  strings.TrimSuffix(*issuer, "/") + "/oauth2/jwks",
		Issuer:   *issuer,
		Audience: *audience,
		Logger:   log,
	})
	cancel()
	if err != nil {
		log.Error("cannot start: is the broker running, with the assertion enabled?", "error", err)
		os.Exit(1)
	}

	srv := &http.Server{Addr: *listen, Handler: v.Middleware(*header)(http.HandlerFunc(show)), ReadHeaderTimeout: 10 * time.Second}
	log.Info("verify-app listening", "addr", *listen, "issuer", *issuer, "audience", *audience)
	if err := srv.ListenAndServe(); err != nil {
		log.Error("stopped", "error", err)
		os.Exit(1)
	}
}

// show answers with the verified identity: JSON for API clients, a page for
// browsers.
func show(w http.ResponseWriter, r *http.Request) {
	id, _ := assertion.FromContext(r.Context()) // Middleware let the request through: always set
	w.Header().Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(id)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.Execute(w, struct {
		*assertion.Claims
		Left string
	}{id, time.Until(id.Expiry).Round(time.Second).String()}); err != nil {
		fmt.Fprintln(os.Stderr, "verify-app:", err)
	}
}

var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>verify-app</title></head>
<body>
<h1>Hello, {{or .Name .PreferredUsername .User}}</h1>
<p>The broker's signed assertion says:</p>
<dl>
<dt>user</dt><dd>{{.User}}</dd>
<dt>provider</dt><dd>{{.Provider}}</dd>
<dt>email (verified)</dt><dd>{{or .Email "none"}}</dd>
<dt>username</dt><dd>{{.PreferredUsername}}</dd>
<dt>groups</dt><dd>{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{else}}none{{end}}{{if .GroupsIncomplete}} (incomplete){{end}}</dd>
<dt>issuer, audience</dt><dd>{{.Issuer}}, {{range .Audience}}{{.}} {{end}}</dd>
<dt>valid for</dt><dd>{{.Left}}</dd>
</dl>
<p><a href="/oauth2/sign_out">Sign out</a></p>
</body></html>
`))
