package selection

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

//go:embed i18n/*.yaml
var i18nFS embed.FS

// DefaultLanguage is the language of the embedded messages every
// translation falls back to.
const DefaultLanguage = "en"

// Messages are the page's texts in one language, by key (docs/selection.md
// lists the keys). A template reads a text as {{.T.title}} and fills in a
// text's placeholders with Format.
type Messages map[string]string

// Format returns the message key with its {name} placeholders replaced:
// Format("sign_in_with", "provider", "Google"). Values are plain text; the
// template escapes the result.
func (m Messages) Format(key string, pairs ...string) string {
	s := m[key]
	for i := 0; i+1 < len(pairs); i += 2 {
		s = strings.ReplaceAll(s, "{"+pairs[i]+"}", pairs[i+1])
	}
	return s
}

// language is one loaded language: its tag as written in the file name, its
// messages (English filled in for missing keys), and the halves of the
// per-provider labels around their placeholder, HTML-escaped, for the fast
// list writer.
type language struct {
	tag             string // for <html lang>, e.g. "de" or "pt-BR"
	msgs            Messages
	signInWith      [2]string // "Sign in with " and ""
	unavailableHTML string    // "Unavailable", escaped
}

// translations holds the languages by lower-case tag.
type translations struct {
	byTag map[string]*language
}

var (
	placeholderRE = regexp.MustCompile(`\{[a-z_]+\}`)
	langTagRE     = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
)

// loadTranslations reads the embedded languages, then the files of dir (if
// any) on top: <tag>.yaml, <tag>.yml or <tag>.json, each a flat map of
// message keys to texts. A file for an embedded language overrides the keys
// it names. Unknown keys and placeholders that differ from the English
// message are errors, so that a typo fails at start-up, not in front of users.
func loadTranslations(dir string) (*translations, []error) {
	t := &translations{byTag: map[string]*language{}}
	var errs []error
	english, err := readMessages(i18nFS, "i18n/en.yaml")
	if err != nil {
		return nil, []error{fmt.Errorf("embedded English messages: %w", err)}
	}
	raw := map[string]Messages{}
	tags := map[string]string{}
	add := func(fsys fs.FS, name, label string) {
		tag := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(path.Base(name), ".yaml"), ".yml"), ".json")
		if !langTagRE.MatchString(tag) {
			errs = append(errs, fmt.Errorf("%s: the file name must be a language tag such as de.yaml or pt-BR.yaml", label))
			return
		}
		m, err := readMessages(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", label, err))
			return
		}
		for _, e := range checkMessages(english, m) {
			errs = append(errs, fmt.Errorf("%s: %w", label, e))
		}
		key := strings.ToLower(tag)
		if raw[key] == nil {
			raw[key], tags[key] = Messages{}, tag
		}
		for k, v := range m {
			raw[key][k] = v
		}
	}
	embedded, _ := fs.Glob(i18nFS, "i18n/*.yaml")
	for _, name := range embedded {
		add(i18nFS, name, name)
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, []error{fmt.Errorf("cannot read the directory: %w", err)}
		}
		fsys := os.DirFS(dir)
		for _, e := range entries {
			ext := path.Ext(e.Name())
			if e.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
				continue
			}
			add(fsys, e.Name(), e.Name())
		}
	}
	for key, m := range raw {
		l := &language{tag: tags[key], msgs: Messages{}}
		for k, v := range english {
			l.msgs[k] = v
		}
		for k, v := range m {
			l.msgs[k] = v
		}
		l.signInWith = splitPlaceholder(l.msgs["sign_in_with"], "{provider}")
		l.unavailableHTML = escapeHTML(l.msgs["provider_unavailable"])
		t.byTag[key] = l
	}
	return t, errs
}

func readMessages(fsys fs.FS, name string) (Messages, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	var m Messages
	if err := yaml.Load(data, &m, yaml.WithUniqueKeys(true)); err != nil {
		return nil, fmt.Errorf("not a flat map of message keys to texts: %w", err)
	}
	return m, nil
}

// checkMessages reports unknown keys and placeholders that differ from the
// English message's.
func checkMessages(english, m Messages) []error {
	var errs []error
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		en, ok := english[k]
		if !ok {
			errs = append(errs, fmt.Errorf("unknown message key %q", k))
			continue
		}
		want, got := placeholders(en), placeholders(m[k])
		if !slices.Equal(want, got) {
			errs = append(errs, fmt.Errorf("%s: uses placeholders %v, want %v", k, got, want))
		}
	}
	return errs
}

func placeholders(s string) []string {
	p := placeholderRE.FindAllString(s, -1)
	sort.Strings(p)
	return slices.Compact(p)
}

// splitPlaceholder returns the HTML-escaped text before and after the
// placeholder ph in msg.
func splitPlaceholder(msg, ph string) [2]string {
	before, after, _ := strings.Cut(msg, ph)
	return [2]string{escapeHTML(before), escapeHTML(after)}
}

// match picks the language for an Accept-Language header (RFC 9110
// §12.5.4): the highest q-value first, ties in the header's order; a tag
// matches a loaded language exactly or after dropping subtags from the end
// (de-CH finds de); "*" and no match give English.
func (t *translations) match(acceptLanguage string) *language {
	for _, tag := range parseAcceptLanguage(acceptLanguage) {
		for tag != "" {
			if l, ok := t.byTag[tag]; ok {
				return l
			}
			i := strings.LastIndexByte(tag, '-')
			if i < 0 {
				break
			}
			tag = tag[:i]
		}
	}
	return t.byTag[DefaultLanguage]
}

// maxLanguageRanges bounds the work one header can cause.
const maxLanguageRanges = 16

// parseAcceptLanguage returns the header's language tags, lower-case, best
// first, without q=0 and malformed entries.
func parseAcceptLanguage(h string) []string {
	type ranged struct {
		tag string
		q   float64
	}
	var rs []ranged
	for part := range strings.SplitSeq(h, ",") {
		if len(rs) == maxLanguageRanges {
			break
		}
		tag, params, _ := strings.Cut(part, ";")
		tag = strings.ToLower(strings.TrimSpace(tag))
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		if q == 0 || tag == "" || tag != "*" && !langTagRE.MatchString(tag) {
			continue
		}
		if tag == "*" {
			tag = DefaultLanguage
		}
		rs = append(rs, ranged{tag, q})
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].q > rs[j].q })
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.tag
	}
	return out
}
