// Command embedded is a Go web app that embeds oidc-broker instead of
// running behind it: the app keeps its own mux, serves the broker's routes
// at /oauth2/, and protects its pages with the broker's access rules.
//
//	cd examples/embedded && go run .     # then open http://127.0.0.1:8080/
//
// Sign in as alice or bob, password "demo" (example accounts from
// users.htpasswd). broker.yaml may name any identity providers instead.
package main

import (
	"flag"
	"fmt"
	"html/template"
	"log"
	"log/slog"
	"net/http"
	"os"

	"github.com/oidc-broker/oidc-broker/broker"
)

func main() {
	path := flag.String("config", "broker.yaml", "oidc-broker configuration file")
	flag.Parse()
	cfg, err := broker.LoadConfig(*path)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := broker.New(cfg, broker.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	addr := cfg.Listen
	if addr == "" {
		addr = broker.DefaultListen
	}
	fmt.Printf("Open http://%s/ and sign in as alice or bob (password \"demo\").\n", addr)
	// The broker's timeouts and header limit (the configuration's server
	// section): a client slow to send its request is cut, a WebSocket or a
	// slow response is not.
	hs := cfg.Server.NewHTTPServer(addr, newApp(srv))
	log.Fatal(hs.ListenAndServe())
}

// newApp is the app: its own pages, the broker's routes at /oauth2/.
func newApp(srv *broker.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/oauth2/", srv.Handler())

	// The configured routes decide (broker.yaml: "/" is public).
	mux.Handle("/{$}", srv.Protect(http.HandlerFunc(home)))

	// Any signed-in user.
	signedIn := srv.Require(broker.AccessRule{})
	mux.Handle("/profile", signedIn(http.HandlerFunc(profile)))

	// Only the admins group, as the configuration's routes would say it.
	admins := srv.Require(broker.AccessRule{Groups: broker.GroupCondition{OneOf: []string{"admins"}}})
	mux.Handle("/admin/", admins(http.HandlerFunc(admin)))
	return mux
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><main>
<h1>{{.Title}}</h1>
{{if .Signed}}<p>Signed in as <strong>{{.User}}</strong>, groups: {{range .Groups}}{{.}} {{end}}</p>
<form method="get" action="/oauth2/sign_out"><button>Sign out</button></form>
{{else}}<p>Not signed in. <a href="/oauth2/sign_in?rd=/profile">Sign in</a></p>{{end}}
<nav><a href="/">Home</a> · <a href="/profile">Profile</a> (signed-in users) · <a href="/admin/">Admin</a> (admins)</nav>
</main></body></html>
`))

func render(w http.ResponseWriter, r *http.Request, title string) {
	id, ok := broker.IdentityFrom(r.Context())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(w, map[string]any{"Title": title, "Signed": ok, "User": id.User(), "Groups": id.Groups})
}

func home(w http.ResponseWriter, r *http.Request)    { render(w, r, "Home") }
func profile(w http.ResponseWriter, r *http.Request) { render(w, r, "Your profile") }
func admin(w http.ResponseWriter, r *http.Request)   { render(w, r, "Admin console") }
