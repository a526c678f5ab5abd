// Package assertion verifies the signed identity assertion that oidc-broker
// sends to the apps behind it, and hands the app the identity it carries.
//
// The broker signs a short-lived JWT (RFC 7519) with its own keys and puts
// it in a request header (by default [DefaultHeader]). An app that checks it
// with a [Verifier] does not have to trust the network between itself and
// the broker: a request that did not come through the broker carries no
// valid assertion. The broker publishes its public keys as a JWK Set
// (RFC 7517) at <broker>/oauth2/jwks; the Verifier fetches, caches and
// refreshes them.
//
//	v, err := assertion.NewVerifier(ctx, assertion.Config{
//		JWKSURL:  "https://auth.example.com/oauth2/jwks",
//		Issuer:   "https://auth.example.com",
//		Audience: "https://dashboards.example.com",
//	})
//	...
//	http.ListenAndServe(addr, v.Middleware(assertion.DefaultHeader)(app))
//
// In a handler, [FromContext] returns the identity. The package depends only
// on the standard library and go-jose. docs/assertion.md in the oidc-broker
// repository describes the claims, the keys and their rotation, and the same
// check in Python.
package assertion

import (
	"encoding/json"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// DefaultHeader is the request header the broker sends the assertion in
// unless configured otherwise (assertion.header).
const DefaultHeader = "X-Auth-Request-Assertion"

// Claims is the identity an assertion carries, with its registered claims.
// It marshals to and from the JWT's claims set (JSON, times as NumericDate
// seconds), so the broker signs this very type.
type Claims struct {
	// Issuer ("iss") is the broker's public base URL, such as
	// https://auth.example.com.
	Issuer string
	// Audience ("aud") names the apps the assertion is for.
	Audience []string
	// User ("sub") is the namespaced identity "<provider>:<sub>", the same
	// value as the X-Auth-Request-User header. Never the IdP's bare sub:
	// two identity providers can issue the same one.
	User string
	// Provider ("provider") is the id of the identity provider the user
	// signed in with.
	Provider string
	// Email ("email") is the user's address, set only when the identity
	// provider verified it ("email_verified": true).
	Email string
	// Name ("name") is the display name.
	Name string
	// PreferredUsername ("preferred_username") is the username.
	PreferredUsername string
	// Groups ("groups") are the user's groups, as the broker maps them.
	Groups []string
	// GroupsIncomplete ("groups_incomplete") is true when the identity
	// provider said the groups did not fit in its token: Groups is then not
	// the full list, and an app should not deny access for a missing group
	// without saying why.
	GroupsIncomplete bool
	// IssuedAt ("iat") and Expiry ("exp") bound the assertion's validity,
	// at most five minutes apart.
	IssuedAt, Expiry time.Time
}

// wireClaims is the JSON form of Claims.
type wireClaims struct {
	Issuer            string           `json:"iss,omitempty"`
	Audience          jwt.Audience     `json:"aud,omitempty"`
	Subject           string           `json:"sub,omitempty"`
	Provider          string           `json:"provider,omitempty"`
	Email             string           `json:"email,omitempty"`
	EmailVerified     bool             `json:"email_verified,omitempty"`
	Name              string           `json:"name,omitempty"`
	PreferredUsername string           `json:"preferred_username,omitempty"`
	Groups            []string         `json:"groups,omitempty"`
	GroupsIncomplete  bool             `json:"groups_incomplete,omitempty"`
	IssuedAt          *jwt.NumericDate `json:"iat,omitempty"`
	Expiry            *jwt.NumericDate `json:"exp,omitempty"`
}

// MarshalJSON writes the claims set: zero values are left out, times are
// whole seconds, a single audience is a string, and an email comes with
// "email_verified": true.
func (c Claims) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireClaims{
		Issuer: c.Issuer, Audience: c.Audience, Subject: c.User, Provider: c.Provider,
		Email: c.Email, EmailVerified: c.Email != "", Name: c.Name, PreferredUsername: c.PreferredUsername,
		Groups: c.Groups, GroupsIncomplete: c.GroupsIncomplete, IssuedAt: jwt.NewNumericDate(c.IssuedAt), Expiry: jwt.NewNumericDate(c.Expiry),
	})
}

// UnmarshalJSON reads a claims set. An email without "email_verified": true
// is dropped.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var w wireClaims
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Claims{
		Issuer: w.Issuer, Audience: w.Audience, User: w.Subject, Provider: w.Provider,
		Name: w.Name, PreferredUsername: w.PreferredUsername, Groups: w.Groups, GroupsIncomplete: w.GroupsIncomplete,
		IssuedAt: w.IssuedAt.Time(), Expiry: w.Expiry.Time(),
	}
	if w.EmailVerified {
		c.Email = w.Email
	}
	return nil
}
