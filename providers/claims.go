package providers

import (
	"strings"
)

// mapClaims builds the Identity from ID token claims and, when fetched,
// userinfo claims. Userinfo wins for profile claims because it is fresher;
// email and email_verified are always taken as a pair from one source, so an
// unverified address from one source is never relayed with the other's flag.
func mapClaims(provider string, idToken, userinfo map[string]any) Identity {
	id := Identity{Provider: provider, Subject: str(idToken["sub"])}
	emailSrc := idToken
	if _, ok := userinfo["email"]; ok {
		emailSrc = userinfo
	}
	id.Email = str(emailSrc["email"])
	id.EmailVerified = isTrue(emailSrc["email_verified"])
	id.Name = first(userinfo, idToken, "name")
	id.PreferredUsername = first(userinfo, idToken, "preferred_username")
	if g, ok := userinfo["groups"]; ok {
		id.Groups = stringList(g)
	} else {
		id.Groups = stringList(idToken["groups"])
	}
	return id
}

func first(a, b map[string]any, key string) string {
	if s := str(a[key]); s != "" {
		return s
	}
	return str(b[key])
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// isTrue accepts the JSON boolean true and, because some IdPs send it, the
// string "true". Anything else is false: an email is verified only when the
// IdP says so.
func isTrue(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return strings.EqualFold(b, "true")
	}
	return false
}

// stringList accepts a JSON array of strings or a space- or comma-separated
// string.
func stringList(v any) []string {
	var out []string
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	case []string:
		for _, s := range t {
			if s != "" {
				out = append(out, s)
			}
		}
	case string:
		out = strings.FieldsFunc(t, func(r rune) bool { return r == ',' || r == ' ' })
	}
	return out
}
