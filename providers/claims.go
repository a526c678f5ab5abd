package providers

import (
	"strings"
)

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
