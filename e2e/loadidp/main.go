// Command loadidp is the identity provider of the login load test
// (e2e/loadlogin_test.go): a demo IdP (package demo, the one "oidc-broker
// demo" runs) in a process of its own, so that the CPU time of a login is
// measured apart for the broker and for the IdP.
//
// It serves one client, "load", with the secret given by -secret
// (client_secret_basic) and the redirect URIs given by -redirect (comma
// separated), the demo accounts (alice, bob, carol; password "demo") and
// -users more (user0000, user0001, …; password "demo", a verified email,
// the groups admins and engineering), whose profile, email and groups
// claims are in the ID token as well as at userinfo. It listens on -listen (default 127.0.0.1:0, a free loopback
// port), takes that address as its issuer, prints "loadidp listening on
// http://ADDR" on stdout once it accepts connections, logs nothing below a
// warning, and exits with status 0 after SIGTERM or SIGINT.
//
// TEST-ONLY.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/oidc-broker/oidc-broker/broker"
	"github.com/oidc-broker/oidc-broker/demo"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	secret := flag.String("secret", "", "the client's secret")
	redirect := flag.String("redirect", "", "the client's redirect URIs, comma separated")
	users := flag.Int("users", 0, "how many accounts userNNNN besides the demo accounts")
	flag.Parse()
	if err := run(*listen, *secret, strings.Split(*redirect, ","), *users); err != nil {
		fmt.Fprintln(os.Stderr, "loadidp:", err)
		os.Exit(1)
	}
}

func run(addr, secret string, redirects []string, more int) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String()
	users := demo.DemoUsers("load")
	for i := range more {
		name := fmt.Sprintf("user%04d", i)
		users = append(users, demo.User{ID: "load-" + name, Username: name, Password: demo.DemoPassword, Name: "User " + name,
			Email: name + "@load.example", EmailVerified: true, Groups: []string{"admins", "engineering"}})
	}
	h, err := demo.NewIdP(demo.IdPConfig{
		Issuer:  issuer,
		Title:   "Load test IdP",
		Users:   users,
		Clients: []demo.Client{{ID: "load", Secret: secret, AuthMethod: demo.AuthMethodBasic, RedirectURIs: redirects}},
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	hs := broker.ServerConfig{}.NewHTTPServer("", h)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Printf("loadidp listening on %s\n", issuer)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
