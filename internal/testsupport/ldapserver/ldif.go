package ldapserver

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Add adds the entries of an LDIF text, as the root DN, in order. It reads
// the subset of LDIF (RFC 2849) tests write: entries separated by blank
// lines, "attr: value" and "attr:: base64" lines, "#" comments; no
// continuation lines and no changetype.
func (s *Server) Add(ldif string) error {
	entries, err := parseLDIF(ldif)
	if err != nil {
		return err
	}
	c, err := s.Root()
	if err != nil {
		return err
	}
	defer c.Close()
	for _, e := range entries {
		if err := c.Add(e); err != nil {
			return fmt.Errorf("ldapserver: add %s: %w", e.DN, err)
		}
	}
	return nil
}

// Delete removes the entries, as the root DN, in order.
func (s *Server) Delete(dns ...string) error {
	c, err := s.Root()
	if err != nil {
		return err
	}
	defer c.Close()
	for _, dn := range dns {
		if err := c.Del(ldap.NewDelRequest(dn, nil)); err != nil {
			return fmt.Errorf("ldapserver: delete %s: %w", dn, err)
		}
	}
	return nil
}

// Modify replaces attribute values of an entry, as the root DN.
func (s *Server) Modify(dn string, replace map[string][]string) error {
	c, err := s.Root()
	if err != nil {
		return err
	}
	defer c.Close()
	req := ldap.NewModifyRequest(dn, nil)
	for attr, values := range replace {
		req.Replace(attr, values)
	}
	return c.Modify(req)
}

func parseLDIF(text string) ([]*ldap.AddRequest, error) {
	var out []*ldap.AddRequest
	for _, block := range strings.Split(strings.TrimSpace(text), "\n\n") {
		var req *ldap.AddRequest
		attrs := map[string][]string{}
		var order []string
		for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("ldapserver: LDIF line %q has no colon", line)
			}
			if rest, b64 := strings.CutPrefix(value, ":"); b64 {
				raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
				if err != nil {
					return nil, fmt.Errorf("ldapserver: LDIF line %q: %w", line, err)
				}
				value = string(raw)
			} else {
				value = strings.TrimPrefix(value, " ")
			}
			if strings.EqualFold(name, "dn") {
				req = ldap.NewAddRequest(value, nil)
				continue
			}
			if req == nil {
				return nil, fmt.Errorf("ldapserver: LDIF entry without dn: %q", block)
			}
			if _, seen := attrs[name]; !seen {
				order = append(order, name)
			}
			attrs[name] = append(attrs[name], value)
		}
		if req == nil {
			continue
		}
		for _, name := range order {
			req.Attribute(name, attrs[name])
		}
		out = append(out, req)
	}
	return out, nil
}
