package local

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"os"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/oidc-broker/oidc-broker/providers"
)

// The files of a "local" provider: an Apache htpasswd file with bcrypt
// entries, and an Apache group file (AuthGroupFile). Both are read once, at
// start-up; every problem is reported with its line.

// localUsers is what a local provider's files and inline groups say.
type localUsers struct {
	hashes map[string][]byte   // username → bcrypt hash
	groups map[string][]string // username → groups, files' order, then inline groups by name
	cost   int                 // the most common bcrypt cost, for the dummy comparison
	costs  map[int]int         // cost → number of entries
}

// Bounds on the files' entries.
const (
	maxUsername = 255 // bytes, as Apache's htpasswd allows
	maxCost     = 17  // htpasswd -C allows 4 to 17; each step doubles a check's time
)

// loadLocalUsers reads and checks the htpasswd file, the group file and the
// inline groups of c. Each error starts with the YAML key it is about.
func loadLocalUsers(c providers.Config) (*localUsers, []error) {
	var errs []error
	if c.HtpasswdFile == "" {
		return nil, []error{errors.New("htpasswd_file: is required for a provider of type local")}
	}
	data, err := os.ReadFile(c.HtpasswdFile)
	if err != nil {
		return nil, []error{fmt.Errorf("htpasswd_file: cannot read %q: %w", c.HtpasswdFile, errors.Unwrap(err))}
	}
	u, problems := parseHtpasswd(data)
	for _, p := range problems {
		errs = append(errs, fmt.Errorf("htpasswd_file: %q %w", c.HtpasswdFile, p))
	}
	if len(problems) == 0 && len(u.hashes) == 0 {
		errs = append(errs, fmt.Errorf("htpasswd_file: %q has no users", c.HtpasswdFile))
	}
	if len(errs) > 0 {
		return nil, errs // the groups' members cannot be checked against a broken user list
	}
	if c.GroupsFile != "" {
		data, err := os.ReadFile(c.GroupsFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("groups_file: cannot read %q: %w", c.GroupsFile, errors.Unwrap(err)))
		} else {
			for _, p := range u.parseGroupFile(data) {
				errs = append(errs, fmt.Errorf("groups_file: %q %w", c.GroupsFile, p))
			}
		}
	}
	errs = append(errs, u.addInlineGroups(c.Groups)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return u, nil
}

// parseHtpasswd reads "user:hash" lines. Blank lines and lines starting
// with '#' are skipped. Only bcrypt hashes are accepted: every other scheme
// htpasswd can write (MD5 apr1, SHA-1, crypt, plain text) is far too cheap
// to brute-force once the file leaks. Errors never quote the hash, which
// may be a plain-text password.
func parseHtpasswd(data []byte) (*localUsers, []error) {
	u := &localUsers{hashes: map[string][]byte{}, groups: map[string][]string{}, costs: map[int]int{}}
	var errs []error
	firstLine := map[string]int{}
	for n, line := range lines(data) {
		if line == "" || line[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: is not user:hash", n))
			continue
		}
		if err := checkName(user); err != nil {
			errs = append(errs, fmt.Errorf("line %d: username %w", n, err))
			continue
		}
		if prev, dup := firstLine[user]; dup {
			errs = append(errs, fmt.Errorf("line %d: user %q is already defined on line %d", n, user, prev))
			continue
		}
		firstLine[user] = n
		cost, err := bcryptCost(hash)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: user %q: %w", n, user, err))
			continue
		}
		u.hashes[user] = []byte(hash)
		u.costs[cost]++
		if u.costs[cost] > u.costs[u.cost] || (u.costs[cost] == u.costs[u.cost] && cost > u.cost) {
			u.cost = cost
		}
	}
	return u, errs
}

// bcryptCost checks that hash is a bcrypt hash htpasswd -B (or any current
// bcrypt library) writes, and returns its cost.
func bcryptCost(hash string) (int, error) {
	const advice = "only bcrypt ($2y$, $2a$, $2b$) is accepted: recreate the entry with htpasswd -B"
	switch {
	case strings.HasPrefix(hash, "$2y$"), strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"):
	case strings.HasPrefix(hash, "$apr1$"):
		return 0, errors.New("has an MD5 (apr1) hash; " + advice)
	case strings.HasPrefix(hash, "{SHA}"):
		return 0, errors.New("has a SHA-1 hash; " + advice)
	case strings.HasPrefix(hash, "$1$"):
		return 0, errors.New("has an MD5-crypt hash; " + advice)
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		return 0, errors.New("has a SHA-crypt hash; " + advice)
	case strings.HasPrefix(hash, "$"):
		return 0, errors.New("has a hash of an unsupported scheme; " + advice)
	case isDESCrypt(hash):
		return 0, errors.New("has a DES crypt hash; " + advice)
	default:
		return 0, errors.New("has a plain-text password or an unknown hash; " + advice)
	}
	if len(hash) != 60 {
		return 0, errors.New("has a malformed bcrypt hash (not 60 characters)")
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return 0, fmt.Errorf("has a malformed bcrypt hash: %w", err)
	}
	if cost > maxCost {
		return 0, fmt.Errorf("has bcrypt cost %d, above %d (htpasswd's maximum): every check would take minutes", cost, maxCost)
	}
	return cost, nil
}

// isDESCrypt matches the 13-character output of the traditional crypt(3).
func isDESCrypt(s string) bool {
	if len(s) != 13 {
		return false
	}
	for _, r := range s {
		if !(r == '.' || r == '/' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// parseGroupFile reads Apache group-file lines, "group: alice bob" (members
// separated by spaces, tabs or commas). A group may span several lines.
// Every member must be a user of the htpasswd file, so a typo fails the
// start instead of silently leaving someone out.
func (u *localUsers) parseGroupFile(data []byte) []error {
	var errs []error
	for n, line := range lines(data) {
		if line == "" || line[0] == '#' {
			continue
		}
		group, members, ok := strings.Cut(line, ":")
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: is not group: user1 user2", n))
			continue
		}
		group = strings.TrimSpace(group)
		if err := checkGroup(group); err != nil {
			errs = append(errs, fmt.Errorf("line %d: group name %w", n, err))
			continue
		}
		for _, m := range strings.FieldsFunc(members, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			if _, ok := u.hashes[m]; !ok {
				errs = append(errs, fmt.Errorf("line %d: group %q: user %q is not in htpasswd_file", n, group, m))
				continue
			}
			u.addGroup(m, group)
		}
	}
	return errs
}

// addInlineGroups adds the `groups:` map of the configuration, group names
// in sorted order (a YAML map has none).
func (u *localUsers) addInlineGroups(groups map[string][]string) []error {
	var errs []error
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	for _, g := range names {
		if err := checkGroup(g); err != nil {
			errs = append(errs, fmt.Errorf("groups.%s: group name %w", g, err))
			continue
		}
		for i, m := range groups[g] {
			if _, ok := u.hashes[m]; !ok {
				errs = append(errs, fmt.Errorf("groups.%s[%d]: user %q is not in htpasswd_file", g, i, m))
				continue
			}
			u.addGroup(m, g)
		}
	}
	return errs
}

func (u *localUsers) addGroup(user, group string) {
	for _, g := range u.groups[user] {
		if g == group {
			return
		}
	}
	u.groups[user] = append(u.groups[user], group)
}

// checkName accepts a username that can be relayed and listed in a group
// file: valid UTF-8, no spaces, control characters or ':', at most 255 bytes.
func checkName(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > maxUsername:
		return fmt.Errorf("is longer than %d bytes", maxUsername)
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == ':' }) >= 0:
		return fmt.Errorf("%q contains a space, a control character or ':'", s)
	}
	return nil
}

// checkGroup is checkName without ',' either: groups are relayed as a
// comma-separated list.
func checkGroup(s string) error {
	if err := checkName(s); err != nil {
		return err
	}
	if strings.Contains(s, ",") {
		return fmt.Errorf("%q contains ','", s)
	}
	return nil
}

// lines yields a text file's lines, trimmed and numbered from 1.
func lines(data []byte) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		n := 0
		for l := range bytes.Lines(data) {
			n++
			if !yield(n, strings.TrimSpace(string(l))) {
				return
			}
		}
	}
}
