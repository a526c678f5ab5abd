package proxyfix_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/oidc-broker/oidc-broker/proxyfix"
)

// The broker listens on 127.0.0.1 behind one nginx that terminates TLS and sets
// X-Forwarded-For, -Proto, -Host and -Port. Downstream handlers ask FromRequest, never the
// headers.
func ExampleFix_Handler() {
	fix, err := proxyfix.New(proxyfix.Config{
		XFor: 1, XProto: 1, XHost: 1, XPort: 1,
		From: []string{"127.0.0.1"},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := proxyfix.FromRequest(r)
		fmt.Println("redirect_uri:", f.BaseURL()+"/oauth2/callback")
		fmt.Println("client:", f.ClientIP, "RemoteAddr:", r.RemoteAddr)
		fmt.Println("original:", f.Original.Scheme, f.Original.Host, f.Original.RemoteAddr)
	})
	handler := fix.Handler(app) // first in the middleware chain

	// What nginx sends after a client forged X-Forwarded-For: 6.6.6.6.
	r := httptest.NewRequest(http.MethodGet, "/oauth2/sign_in", nil)
	r.RemoteAddr, r.Host = "127.0.0.1:40000", "127.0.0.1:4180"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.7")
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Host", "sso.example.com")
	r.Header.Set("X-Forwarded-Port", "443")
	handler.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// redirect_uri: https://sso.example.com/oauth2/callback
	// client: 203.0.113.7 RemoteAddr: 203.0.113.7:0
	// original: http 127.0.0.1:4180 127.0.0.1:40000
}
