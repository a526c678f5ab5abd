package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"

	"github.com/oidc-broker/oidc-broker/broker"
	"github.com/oidc-broker/oidc-broker/demo"
	"github.com/oidc-broker/oidc-broker/providers"
)

// demoIdP describes one of the two built-in demo identity providers.
type demoIdP struct {
	id, name, realm, authMethod string
	iss                         bool
}

var demoIdPs = []demoIdP{
	{id: "acme", name: "Acme (demo IdP)", realm: "acme", authMethod: providers.AuthClientSecretBasic},
	{id: "globex", name: "Globex (demo IdP)", realm: "globex", authMethod: providers.AuthClientSecretPost, iss: true},
}

// runDemo runs two DEMO-ONLY OpenID Providers and a demo app on loopback, and
// the broker in front of the app, wired exactly as a user would configure
// it. Nothing here is for production.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4180", "broker address (loopback unless --allow-remote)")
	allowRemote := fs.Bool("allow-remote", false, "let --listen name a non-loopback address: anyone who reaches it can sign in as the demo users")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	upstream := fs.String("upstream", "", "proxy to this app instead of the built-in demo app (e.g. examples/verify-app)")
	signed := fs.Bool("assertion", false, "send the signed identity assertion (X-Auth-Request-Assertion; docs/assertion.md)")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if !*allowRemote && !loopbackListen(*listen) {
		fmt.Fprintf(stderr, "oidc-broker demo: --listen %s is not a loopback address: the demo users and their password are public,\n"+
			"so anyone who reaches it could sign in. Use 127.0.0.1:PORT, or add --allow-remote if that is what you want.\n", *listen)
		return 2
	}
	logger := newLogger(broker.LogConfig{Level: *level}, stderr)

	brokerLn, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(stderr, "oidc-broker demo:", err)
		if errors.Is(err, syscall.EADDRINUSE) {
			fmt.Fprintln(stderr, "Another program uses that port: pick another one, such as --listen 127.0.0.1:4181 (or 127.0.0.1:0 for any free port).")
		}
		return 1
	}
	base := "http://" + brokerLn.Addr().String()

	cfg := broker.Config{PublicURL: base}
	cfg.Selection.Title = "Sign in to the demo app"
	cfg.Routes = demoRoutes() // demorules.go
	look, err := demoLook(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "oidc-broker demo:", err)
		return 1
	}
	for _, d := range demoIdPs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(stderr, "oidc-broker demo:", err)
			return 1
		}
		issuer := "http://" + ln.Addr().String()
		secret := ""
		if d.authMethod != providers.AuthNone {
			secret = randomHex()
		}
		h, err := demo.NewIdP(demo.IdPConfig{
			Issuer: issuer,
			Title:  d.name,
			Users:  demo.DemoUsers(d.realm),
			Clients: []demo.Client{{ID: "oidc-broker-demo", Secret: secret, AuthMethod: d.authMethod,
				RedirectURIs:           []string{base + "/oauth2/callback/" + d.id},
				PostLogoutRedirectURIs: []string{base + "/oauth2/signed_out/" + d.id}}},
			Logger:                   logger.With("demo_idp", d.id),
			AuthorizationResponseIss: d.iss,
			Look:                     look,
		})
		if err != nil {
			fmt.Fprintln(stderr, "oidc-broker demo:", err)
			return 1
		}
		go serveBackground(ln, h, logger)
		cfg.Providers = append(cfg.Providers, providers.Config{ID: d.id, Name: d.name, Issuer: issuer,
			ClientID: "oidc-broker-demo", ClientSecret: secret, TokenEndpointAuthMethod: d.authMethod,
			Scopes: []string{"openid", "email", "profile", "groups", "offline_access"}}) // refreshed every 5 minutes
	}

	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "oidc-broker demo:", err)
		return 1
	}
	go serveBackground(appLn, demo.NewApp(), logger)
	cfg.Upstream = "http://" + appLn.Addr().String()
	if *upstream != "" {
		cfg.Upstream = *upstream
	}
	cfg.Assertion.Enabled = *signed

	srv, err := broker.New(cfg, broker.Options{Logger: logger})
	if err != nil {
		fmt.Fprintln(stderr, "oidc-broker demo:", err)
		return 1
	}
	fmt.Fprintf(stdout, `oidc-broker demo (DEMO-ONLY identity providers; nothing here is for production)

  Open %s/ and sign in through either demo IdP.
  Users: alice, bob, carol (password %q); carol's email is not verified.
  %s is public; %s is for the group admins (alice): bob sees the 403.

Press Ctrl-C to stop.
`, base, demo.DemoPassword, base+demoPublicPath, base+demoAdminsPath)
	return serveUntilSignal(brokerLn, cfg.Server.NewHTTPServer("", srv.Handler()), logger, defaultDrain, notifyHUP(), nil)
}

// loopbackListen reports whether addr binds only the loopback interface
// (an empty host binds every interface).
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true // net.Listen names the problem
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveBackground serves a demo IdP or the demo app, with the broker's
// default timeouts.
func serveBackground(ln net.Listener, h http.Handler, logger *slog.Logger) {
	hs := broker.ServerConfig{}.NewHTTPServer("", h)
	if err := hs.Serve(ln); err != nil {
		logger.Error("demo server stopped", "addr", ln.Addr().String(), "error", err)
	}
}

func randomHex() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
