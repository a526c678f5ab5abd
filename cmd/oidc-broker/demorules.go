package main

import (
	"github.com/oidc-broker/oidc-broker/broker"
	"github.com/oidc-broker/oidc-broker/selection"
)

// The demo shows the access rules (docs/access.md) without a
// configuration: a public page anyone may open, a page only the demo
// group "admins" may open (alice may, bob and carol see the 403), and
// everything else for any signed-in user. The demo app links to both.
const (
	demoPublicPath = "/public/"
	demoAdminsPath = "/admins/"
	demoAdminGroup = "admins"
)

func demoRoutes() []broker.Route {
	return []broker.Route{
		{Path: demoPublicPath, AccessRule: broker.AccessRule{Public: true}},
		{Path: demoAdminsPath, AccessRule: broker.AccessRule{Groups: broker.GroupCondition{OneOf: []string{demoAdminGroup}}}},
	}
}

// demoLook is the page system of the broker's configuration, which the
// demo IdPs' pages are drawn in too.
func demoLook(cfg broker.Config) (*selection.Page, error) { return selection.New(cfg.Selection) }
