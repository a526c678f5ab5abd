package providers

import (
	"strings"
	"testing"
)

func TestRegistryUpdateCarriesOverUnchangedProviders(t *testing.T) {
	oidc := func(id string) Config {
		return Config{ID: id, Name: id, Issuer: "https://" + id + ".example", ClientID: "c", ClientSecret: "s"}
	}
	// A type whose providers read files, as local and ldap do.
	files := OIDC
	files.Name, files.Reopen = "files", true
	types := append(Types{files}, testTypes...)
	local := oidc("staff")
	local.Type = "files"
	r, err := NewRegistry(types, []Config{oidc("a"), oidc("b"), local}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := oidc("b")
	b.Scopes = []string{"openid", "groups"}
	next, err := r.Update([]Config{b, oidc("a"), local, oidc("c")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(r *Registry, id string) Provider {
		p, ok := r.Get(id)
		if !ok {
			t.Fatalf("%s missing", id)
		}
		return p
	}
	if get(next, "a") != get(r, "a") {
		t.Error("a is unchanged but was opened anew")
	}
	if get(next, "b") == get(r, "b") {
		t.Error("b changed but was carried over")
	}
	if get(next, "staff") == get(r, "staff") {
		t.Error("a provider of a type that is reopened was carried over: an edited file would not take effect")
	}
	var order []string
	for _, p := range next.All() {
		order = append(order, p.ID())
	}
	if got := strings.Join(order, ","); got != "b,a,staff,c" {
		t.Errorf("order %s, want the new configuration's", got)
	}
	if len(r.All()) != 3 {
		t.Error("Update changed the old registry")
	}
	if _, err := r.Update([]Config{oidc("a"), {ID: "x"}}, Options{}); err == nil || !strings.Contains(err.Error(), "providers[1].") {
		t.Errorf("an invalid configuration: err %v, want one naming providers[1]", err)
	}
}
