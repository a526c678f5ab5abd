package providers

import (
	"encoding/gob"
	"time"
)

// Identity is the normalized, provider-independent description of a signed-in
// user. It is what the broker keeps in the session and relays to apps.
//
// Identity is (Provider, Subject): two IdPs may issue the same sub or the same
// email, so neither is an identity on its own.
type Identity struct {
	// Provider is the id of the provider that authenticated the user.
	Provider string `json:"provider"`
	// Subject is the IdP's `sub` claim, unchanged.
	Subject string `json:"sub"`
	// Email is the user's email address as the IdP stated it.
	Email string `json:"email,omitempty"`
	// EmailVerified is true only when the IdP said the email is verified.
	EmailVerified bool `json:"email_verified"`
	// Name is the display name.
	Name string `json:"name,omitempty"`
	// PreferredUsername is the IdP's preferred_username claim.
	PreferredUsername string `json:"preferred_username,omitempty"`
	// Groups are the group names the IdP asserted, in the IdP's order,
	// with the provider's group prefix, then its static groups.
	Groups []string `json:"groups,omitempty"`
	// GroupsIncomplete is true when the IdP said the groups did not fit in
	// the token (distributed claims, Entra ID's "groups overage"): Groups
	// is then not the user's full list.
	GroupsIncomplete bool `json:"groups_incomplete,omitempty"`
	// AuthTime is when the broker completed the login.
	AuthTime time.Time `json:"auth_time"`
	// AuthnTime is when the user last authenticated, as verified: the ID
	// token's (or access token's) auth_time, or for local and ldap
	// providers the password check. Zero when the IdP did not say: such a
	// login meets no max_age (step-up, docs/access.md).
	AuthnTime time.Time `json:"authn_time,omitzero"`
	// ACR is the authentication context class the IdP stated (the acr
	// claim), "" when none.
	ACR string `json:"acr,omitempty"`
}

// User returns the namespaced subject "<provider>:<sub>", the one value that
// identifies a user across all providers.
func (id Identity) User() string { return id.Provider + ":" + id.Subject }

// VerifiedEmail returns the email when the IdP verified it, and "" otherwise.
func (id Identity) VerifiedEmail() string {
	if id.EmailVerified {
		return id.Email
	}
	return ""
}

func init() {
	// Sessions are gob-encoded by scs; every concrete type stored there must
	// be registered once.
	gob.Register(Identity{})
}
