package providers

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// ClaimsConfig says how a provider's claims become an Identity. It is data,
// so that Keycloak's realm_access.roles, Entra ID's groups or a GitHub-like
// OAuth2 API's "login" need configuration, not code. Every path is a claim
// name or a dotted path into nested objects (realm_access.roles,
// resource_access.my-client.roles); a claim name that itself contains dots
// (https://example.com/groups) is matched whole first.
type ClaimsConfig struct {
	// Source is where claims are read: "both" (default: the ID token, then
	// userinfo, which wins where both have a claim), "id_token" or
	// "userinfo".
	Source string `yaml:"source"`
	// Subject is the claim that identifies the user. Default "sub". Only
	// plain OAuth2 providers may change it (e.g. "id"); an OpenID provider's
	// subject is always its sub.
	Subject string `yaml:"subject"`
	// Username is the claim relayed as the preferred username. Default
	// "preferred_username".
	Username string `yaml:"username"`
	// Name is the display-name claim. Default "name".
	Name string `yaml:"name"`
	// Email is the email claim. Default "email".
	Email string `yaml:"email"`
	// Groups is the groups claim: an array of strings, or one string of
	// space- or comma-separated names. Default "groups".
	Groups string `yaml:"groups"`
	// GroupPrefix is prepended to every group of this provider ("google:"),
	// so that equal group names from two IdPs stay apart.
	GroupPrefix string `yaml:"group_prefix"`
	// ExtraGroups are further claims whose values join the groups, after
	// those of Groups, each value as GroupPrefix + the entry's Prefix +
	// the value: Keycloak's realm and client roles, Entra ID's app roles.
	// The keycloak and entra presets set it; an explicit list, even an
	// empty one, replaces theirs.
	ExtraGroups []GroupClaim `yaml:"extra_groups"`
	// StaticGroups are added for everyone who signs in with this provider
	// (without GroupPrefix).
	StaticGroups []string `yaml:"static_groups"`
	// InsecureAssumeEmailVerified treats the email as verified although the
	// IdP did not say so. RISKY: use it only for an IdP that verifies every
	// address and is known not to send email_verified; with any other IdP a
	// user can claim someone else's address and be relayed as its owner.
	InsecureAssumeEmailVerified bool `yaml:"insecure_assume_email_verified"`
}

// GroupClaim is one entry of ClaimsConfig.ExtraGroups.
type GroupClaim struct {
	// Claim is the claim name or dotted path, as for ClaimsConfig.Groups:
	// realm_access.roles, resource_access.<client>.roles, roles.
	Claim string `yaml:"claim"`
	// Prefix tells these groups apart from the others ("role:").
	Prefix string `yaml:"prefix"`
}

// Claim sources.
const (
	SourceBoth     = "both"
	SourceIDToken  = "id_token"
	SourceUserinfo = "userinfo"
)

func (c ClaimsConfig) validate(oauth2Only bool) []string {
	var errs []string
	switch c.Source {
	case "", SourceBoth, SourceIDToken, SourceUserinfo:
	default:
		errs = append(errs, fmt.Sprintf("claims.source: %q is not one of both, id_token, userinfo", c.Source))
	}
	if c.Source == SourceIDToken && oauth2Only {
		errs = append(errs, "claims.source: a plain OAuth2 provider has no ID token")
	}
	if c.Subject != "" && c.Subject != "sub" && !oauth2Only {
		errs = append(errs, fmt.Sprintf("claims.subject: %q: an OpenID provider's subject is always sub", c.Subject))
	}
	for i, g := range c.StaticGroups {
		if strings.TrimSpace(g) == "" {
			errs = append(errs, fmt.Sprintf("claims.static_groups[%d]: is empty", i))
		}
	}
	for i, g := range c.ExtraGroups {
		if strings.TrimSpace(g.Claim) == "" {
			errs = append(errs, fmt.Sprintf("claims.extra_groups[%d].claim: is required", i))
		}
	}
	return errs
}

// mapper turns claims into an Identity for one provider.
type mapper struct {
	provider string
	cfg      ClaimsConfig
	log      *slog.Logger
	// overageResolved: a preset resolves groups overage itself (Entra ID
	// through Microsoft Graph) and logs the outcome; the mapper only flags it.
	overageResolved bool
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// identity builds the Identity from ID-token claims and userinfo claims
// (either may be nil), as the configuration says. Email and
// email_verified are always taken as a pair from one source, so an address
// from one source is never relayed with the other's verification flag.
func (m mapper) identity(idToken, userinfo map[string]any) Identity {
	var sources []map[string]any // in order of precedence
	switch or(m.cfg.Source, SourceBoth) {
	case SourceIDToken:
		sources = []map[string]any{idToken}
	case SourceUserinfo:
		sources = []map[string]any{userinfo}
	default:
		sources = []map[string]any{userinfo, idToken}
	}
	lookup := func(path string) (any, map[string]any) {
		for _, src := range sources {
			if v, ok := claimPath(src, path); ok {
				return v, src
			}
		}
		return nil, nil
	}
	id := Identity{Provider: m.provider}
	// The subject of an OpenID provider comes from the verified ID token;
	// userinfo's sub was checked to be equal.
	if idToken != nil {
		id.Subject = scalar(idToken["sub"])
	} else {
		v, _ := lookup(or(m.cfg.Subject, "sub"))
		id.Subject = scalar(v)
	}
	emailClaim := or(m.cfg.Email, "email")
	if v, src := lookup(emailClaim); src != nil {
		id.Email = scalar(v)
		verified, _ := claimPath(src, "email_verified")
		id.EmailVerified = isTrue(verified) || m.cfg.InsecureAssumeEmailVerified
	}
	v, _ := lookup(or(m.cfg.Name, "name"))
	id.Name = scalar(v)
	v, _ = lookup(or(m.cfg.Username, "preferred_username"))
	id.PreferredUsername = scalar(v)

	groupsClaim := or(m.cfg.Groups, "groups")
	v, _ = lookup(groupsClaim)
	for _, g := range stringList(v) {
		id.Groups = append(id.Groups, m.cfg.GroupPrefix+g)
	}
	for _, extra := range m.cfg.ExtraGroups {
		more, _ := lookup(extra.Claim)
		for _, g := range stringList(more) {
			id.Groups = append(id.Groups, m.cfg.GroupPrefix+extra.Prefix+g)
		}
	}
	id.Groups = append(id.Groups, m.cfg.StaticGroups...)
	if v == nil && overage(groupsClaim, sources...) {
		id.GroupsIncomplete = true
	}
	if id.GroupsIncomplete && !m.overageResolved {
		m.log.Warn("groups did not fit in the token (distributed claims); relaying the identity with groups_incomplete",
			"provider", m.provider, "sub", id.Subject, "claim", groupsClaim)
	}
	return id
}

// carriesAll reports whether claims (an ID token's; nil: none) carry every
// claim the mapping reads: the email with its email_verified (they are
// taken as a pair), the name, the username, the groups and the extra
// group claims. Userinfo could then only repeat them, or differ from a
// token the IdP has just issued (wantsUserinfo: "auto" skips the call).
func (m mapper) carriesAll(claims map[string]any) bool {
	if claims == nil {
		return false
	}
	need := []string{or(m.cfg.Email, "email"), or(m.cfg.Name, "name"), or(m.cfg.Username, "preferred_username"), or(m.cfg.Groups, "groups")}
	if !m.cfg.InsecureAssumeEmailVerified {
		need = append(need, "email_verified")
	}
	for _, g := range m.cfg.ExtraGroups {
		need = append(need, g.Claim)
	}
	for _, path := range need {
		if v, ok := claimPath(claims, path); !ok || v == nil { // null says nothing
			return false
		}
	}
	return true
}

// overage reports whether a source declares the claim as distributed
// (OpenID Connect Core §5.6.2), as Entra ID does when a user has too many
// groups for the token: "_claim_names": {"groups": "src1"}.
func overage(claim string, sources ...map[string]any) bool {
	for _, src := range sources {
		if names, ok := src["_claim_names"].(map[string]any); ok {
			if _, ok := names[claim]; ok {
				return true
			}
		}
	}
	return false
}

// claimPath resolves a claim name or dotted path. At each level the longest
// key that matches a prefix of the remaining path wins, so both
// "https://example.com/groups" and "resource_access.my.client.roles" (with a
// client id containing a dot) resolve without any quoting syntax.
func claimPath(claims map[string]any, path string) (any, bool) {
	if claims == nil || path == "" {
		return nil, false
	}
	cur := claims
	rest := path
	for {
		v, ok := cur[rest]
		if ok {
			return v, true
		}
		found := false
		for i := strings.LastIndexByte(rest, '.'); i > 0; i = strings.LastIndexByte(rest[:i], '.') {
			if next, ok := cur[rest[:i]].(map[string]any); ok {
				cur, rest, found = next, rest[i+1:], true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
}

// ClaimString is the claim at path (a name or a dotted path, as the
// mapping reads it) as text: a string, or a number in decimal; "" when
// absent or of another kind.
func ClaimString(claims map[string]any, path string) string {
	v, _ := claimPath(claims, path)
	return scalar(v)
}

// ClaimTrue reports whether the claim at path is true: the JSON boolean,
// or the string "true" (as some IdPs send it).
func ClaimTrue(claims map[string]any, path string) bool {
	v, _ := claimPath(claims, path)
	return isTrue(v)
}

// ClaimList is the claim at path as a list: a JSON array of strings, or a
// space- or comma-separated string.
func ClaimList(claims map[string]any, path string) []string {
	v, _ := claimPath(claims, path)
	return stringList(v)
}

// scalar renders a string claim; numbers (GitHub's numeric id) become their
// decimal text.
func scalar(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case json.Number:
		return t.String()
	}
	return ""
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
