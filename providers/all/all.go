// Package all is the table of every provider type oidc-broker knows, from
// the name a configuration gives as its type to the package that
// implements it: the generic oidc and oauth2, local, ldap and the IdP
// presets. The broker checks configurations and builds its registry with
// it, and `oidc-broker check` probes with it; no type registers itself.
package all

import (
	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/providers/ldap"
	"github.com/oidc-broker/oidc-broker/providers/local"
	"github.com/oidc-broker/oidc-broker/providers/presets"
)

// Types are every provider type, in the order an error lists them: the
// generic ones, then the presets by name.
func Types() providers.Types {
	return append(providers.Types{providers.OIDC, providers.OAuth2, local.Type, ldap.Type}, presets.Types()...)
}
