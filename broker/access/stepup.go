package access

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// StepUp is what a rule asks of the sign-in beyond who the user is
// (OpenID Connect Core §3.1.2.1): a recent authentication, an
// authentication context class. A session that does not meet it is sent
// to sign in again at its IdP with max_age (and prompt=login) or
// acr_values, and the new ID token's auth_time and acr are verified
// against them (providers.CheckStepUp) and kept in the session.
type StepUp struct {
	// MaxAge, when set, requires the user to have authenticated at the IdP
	// (its auth_time) at most this long ago.
	MaxAge time.Duration `yaml:"max_age"`
	// ACRValues, when set, requires the IdP to have stated one of these
	// authentication context classes (its acr), e.g. Keycloak's level
	// names or "http://schemas.openid.net/pape/policies/2007/06/multi-factor".
	ACRValues []string `yaml:"acr_values"`
}

func (s StepUp) set() bool { return s.MaxAge > 0 || len(s.ACRValues) > 0 }

func (s StepUp) clone() StepUp { return StepUp{MaxAge: s.MaxAge, ACRValues: slices.Clone(s.ACRValues)} }

// IsZero reports whether s asks nothing.
func (s StepUp) IsZero() bool { return !s.set() }

// MaxAgePtr is MaxAge for providers.AuthRequest: nil when unset.
func (s StepUp) MaxAgePtr() *time.Duration {
	if s.MaxAge <= 0 {
		return nil
	}
	d := s.MaxAge
	return &d
}

// MetBy reports whether the sign-in of id meets s at now: the same check
// the callback runs on the ID token, so a sign-in that passed it passes
// here too.
func (s StepUp) MetBy(id providers.Identity, now time.Time) bool {
	return providers.CheckStepUp(id, s.MaxAgePtr(), s.ACRValues, now) == nil
}

func (s StepUp) String() string {
	var parts []string
	if s.MaxAge > 0 {
		parts = append(parts, "max_age "+s.MaxAge.String())
	}
	if len(s.ACRValues) > 0 {
		parts = append(parts, fmt.Sprintf("acr one of %v", s.ACRValues))
	}
	return strings.Join(parts, " and ")
}

// maxStepUpAge bounds max_age: a longer one is no step-up.
const maxStepUpAge = 365 * 24 * time.Hour

// problems checks s; each message starts with prefix and the field's
// YAML name.
func (s StepUp) problems(prefix string, public bool) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", prefix, field, fmt.Sprintf(format, args...)))
	}
	if public && s.set() {
		add("public", "cannot be combined with max_age or acr_values")
	}
	if s.MaxAge < 0 || s.MaxAge > maxStepUpAge || (s.MaxAge > 0 && s.MaxAge < time.Second) {
		add("max_age", "%s must be between 1s and %s", s.MaxAge, maxStepUpAge)
	}
	for i, v := range s.ACRValues {
		if !ValidACR(v) {
			add(fmt.Sprintf("acr_values[%d]", i), "%q must be a non-empty value of at most 256 visible characters without spaces or quotes", v)
		}
	}
	return errs
}

// ValidACR accepts an acr value as acr_values can carry it: visible
// ASCII without spaces, quotes or backslashes, at most 256 bytes.
func ValidACR(v string) bool {
	if v == "" || len(v) > 256 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// WithClock makes p judge max_age by now (tests); it returns p.
func (p *Policy) WithClock(now func() time.Time) *Policy {
	p.now = now
	return p
}

func (p *Policy) clock() time.Time {
	if p.now == nil {
		return time.Now()
	}
	return p.now()
}
