package selection

import (
	"errors"
	"fmt"
	"strings"
)

// Provider is one identity provider as configured: what the page knows
// about it before any request.
type Provider struct {
	// ID is the provider's id, as in /oauth2/start/{id}.
	ID string
	// Name is shown on its button. Default: the ID.
	Name string
	// Group heads its section in the list view (more providers than
	// Config.ListThreshold). Groups appear in the order of their first
	// provider; providers without one come under "Other" when others have one.
	Group string
	// Domains are the email domains of its users, for home-realm discovery:
	// "example.com" matches exactly (case-insensitive), ".example.com"
	// matches example.com and every subdomain. The most specific claim wins:
	// an exact domain, then the longest suffix.
	Domains []string
	// Icon is a local PNG, SVG, ICO or WebP file shown on its button.
	Icon string
}

// Catalog is the providers of a page, prepared once: the home-realm table,
// the groups, the search keys, the icons, and each provider's escaped
// markup, so that a page of a thousand providers renders quickly. It is
// immutable and safe for concurrent use.
type Catalog struct {
	entries  []entry
	byID     map[string]int
	exact    map[string]int // domain → entry
	suffixes map[string]int // domain of a ".domain" claim → entry
	groups   []group        // in order of first appearance
}

type entry struct {
	Provider
	icon     *Asset
	idHTML   string // escaped id
	nameHTML string // escaped name
	iconHTML string // escaped "icons/<id>?v=<hash>", or ""
	key      string // lower-case name NUL id, for search
	group    int
}

type group struct {
	name    string // "" for providers without a group
	members []int
}

// NewCatalog validates the providers (see CheckProviders; and each needs a
// unique id) and prepares them, reading their icons.
func NewCatalog(ps []Provider) (*Catalog, error) {
	var errs []error
	if err := CheckProviders(ps); err != nil {
		errs = append(errs, err)
	}
	ids := map[string]bool{}
	for i, p := range ps {
		switch {
		case p.ID == "":
			errs = append(errs, fmt.Errorf("[%d].id: is required", i))
		case ids[p.ID]:
			errs = append(errs, fmt.Errorf("[%d].id: %q is used twice", i, p.ID))
		}
		ids[p.ID] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("selection: %w", err)
	}
	c := &Catalog{byID: make(map[string]int, len(ps)), exact: map[string]int{}, suffixes: map[string]int{}}
	groupIndex := map[string]int{}
	for i, p := range ps {
		if p.Name == "" {
			p.Name = p.ID
		}
		e := entry{Provider: p, idHTML: escapeHTML(p.ID), nameHTML: escapeHTML(p.Name),
			key: strings.ToLower(p.Name + "\x00" + p.ID)}
		if p.Icon != "" {
			a, err := LoadImage(p.Icon)
			if err != nil {
				return nil, fmt.Errorf("selection: [%d].icon: %w", i, err)
			}
			e.icon = &a
			e.iconHTML = escapeHTML(iconName(p.ID) + "?v=" + a.Hash)
		}
		g, ok := groupIndex[p.Group]
		if !ok {
			g = len(c.groups)
			groupIndex[p.Group] = g
			c.groups = append(c.groups, group{name: p.Group})
		}
		e.group = g
		c.groups[g].members = append(c.groups[g].members, i)
		for _, d := range p.Domains {
			d = strings.ToLower(d)
			if s, ok := strings.CutPrefix(d, "."); ok {
				c.suffixes[s] = i
			} else {
				c.exact[d] = i
			}
		}
		c.byID[p.ID] = i
		c.entries = append(c.entries, e)
	}
	return c, nil
}

// CheckProviders reports every problem in the page's settings of ps at
// once, each prefixed with its position and key ("[2].domains[0]: ..."):
// domains that are not DNS names or that two providers claim, groups too
// long, icons that cannot be used. It reads the icon files.
func CheckProviders(ps []Provider) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	claims := map[string]string{} // normalized claim → provider id
	for i, p := range ps {
		for j, d := range p.Domains {
			field := fmt.Sprintf("[%d].domains[%d]", i, j)
			if err := checkDomain(d); err != nil {
				add(field, "%q %v", d, err)
				continue
			}
			n := strings.ToLower(d)
			if other, dup := claims[n]; dup {
				if other == p.ID {
					add(field, "%q is listed twice", d)
				} else {
					add(field, "%q is also claimed by provider %q: a domain can lead to one provider only", d, other)
				}
				continue
			}
			claims[n] = p.ID
		}
		if len(p.Group) > maxGroupLength {
			add(fmt.Sprintf("[%d].group", i), "is longer than %d bytes", maxGroupLength)
		}
		if p.Icon != "" {
			if _, err := LoadImage(p.Icon); err != nil {
				add(fmt.Sprintf("[%d].icon", i), "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

const maxGroupLength = 100

// checkDomain accepts a DNS name (letters, digits and hyphens in labels of
// at most 63 characters, 253 in all, not ending in a numeric label so that
// IP addresses are refused), optionally with a leading dot for the domain
// and its subdomains.
func checkDomain(d string) error {
	name := strings.TrimPrefix(d, ".")
	if name == "" || len(name) > 253 {
		return errors.New("is not a DNS name")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New("is not a DNS name (use ASCII; write an internationalized domain in its xn-- form)")
		}
		for i := 0; i < len(l); i++ {
			c := l[i] | 0x20
			if !(c >= 'a' && c <= 'z' || l[i] >= '0' && l[i] <= '9' || l[i] == '-') {
				return errors.New("is not a DNS name (use ASCII; write an internationalized domain in its xn-- form)")
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return errors.New("is an IP address, not a domain")
	}
	return nil
}

// maxLoginLength bounds what a login may be; a longer one matches nothing.
const maxLoginLength = 320

// Discover is home-realm discovery: it finds the provider whose domains
// include the domain of login (an email address, or a user name of the
// form user@domain). It returns the provider's id, and the domain it looked
// up ("" when login has none); ok is false when no provider claims it.
func (c *Catalog) Discover(login string) (id, domain string, ok bool) {
	login = strings.TrimSpace(login)
	at := strings.LastIndexByte(login, '@')
	if at < 1 || at == len(login)-1 || len(login) > maxLoginLength {
		return "", "", false
	}
	domain = strings.ToLower(login[at+1:])
	if i, ok := c.exact[domain]; ok {
		return c.entries[i].ID, domain, true
	}
	for d := domain; d != ""; {
		if i, ok := c.suffixes[d]; ok {
			return c.entries[i].ID, domain, true
		}
		_, d, _ = strings.Cut(d, ".")
	}
	return "", domain, false
}

// Has reports whether the catalog knows the provider id.
func (c *Catalog) Has(id string) bool { _, ok := c.byID[id]; return ok }

// Name returns a provider's display name, or id when it is unknown.
func (c *Catalog) Name(id string) string {
	if i, ok := c.byID[id]; ok {
		return c.entries[i].Name
	}
	return id
}

// Len is the number of providers.
func (c *Catalog) Len() int { return len(c.entries) }

// HasDomains reports whether any provider claims a domain, which is when
// the page offers home-realm discovery.
func (c *Catalog) HasDomains() bool { return len(c.exact)+len(c.suffixes) > 0 }

// Icon returns a provider's icon.
func (c *Catalog) Icon(id string) (Asset, bool) {
	if i, ok := c.byID[id]; ok && c.entries[i].icon != nil {
		return *c.entries[i].icon, true
	}
	return Asset{}, false
}

// grouped reports whether any provider has a group.
func (c *Catalog) grouped() bool {
	return len(c.groups) > 1 || len(c.groups) == 1 && c.groups[0].name != ""
}

// iconName is an icon's asset name under /oauth2/static/.
func iconName(id string) string { return "icons/" + id }
