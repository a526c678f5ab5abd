package selection

import "fmt"

// Contrast checks of the configured colours (WCAG 2.2 success criteria
// 1.4.3 and 1.4.11): the pages derive their muted text, borders and the
// colour of button labels from these three colours, so these are the
// pairs a configuration can get wrong.

// MinTextContrast is the WCAG 2.2 AA contrast ratio for normal text.
const MinTextContrast = 4.5

// ContrastProblem is one pair of colours, as the pages use them, whose
// contrast ratio is below WCAG AA.
type ContrastProblem struct {
	// Keys names the configuration keys the pair comes from, such as
	// "colors.text" and "colors.background" (a default is named too).
	Keys [2]string
	// Colors are the two colours compared (as configured, or the default).
	Colors [2]string
	// Ratio is their contrast ratio (1 to 21); Min is the least AA allows.
	Ratio, Min float64
	// Use says where the pages put that pair.
	Use string
}

func (p ContrastProblem) String() string {
	return fmt.Sprintf("%s %s on %s %s has a contrast of %.1f:1; WCAG AA asks for %.1f:1 (%s)",
		p.Keys[0], p.Colors[0], p.Keys[1], p.Colors[1], p.Ratio, p.Min, p.Use)
}

// ContrastProblems lists the pairs of c's colours (configured or default)
// that fail WCAG AA on the broker's pages: text on the background, the
// primary colour on the background (links, focus ring, outlined
// buttons). (A filled button's label is black or white, whichever
// contrasts more with the primary colour, which is always at least
// 4.58:1.) Colours that are not valid
// hex colours are left to Validate. `oidc-broker check` prints each one as
// a warning.
func ContrastProblems(c Config) []ContrastProblem {
	if !c.colorsValid() {
		return nil
	}
	type named struct{ key, hex string }
	pick := func(key, v, def string) named {
		if v == "" {
			return named{key + " (default)", def}
		}
		return named{key, v}
	}
	primary := pick("colors.primary", c.Colors.Primary, DefaultPrimary)
	bg := pick("colors.background", c.Colors.Background, DefaultBackground)
	text := pick("colors.text", c.Colors.Text, DefaultText)
	var out []ContrastProblem
	check := func(fg, back named, use string) {
		if r := contrast(parseHex(fg.hex), parseHex(back.hex)); r < MinTextContrast {
			out = append(out, ContrastProblem{Keys: [2]string{fg.key, back.key}, Colors: [2]string{fg.hex, back.hex},
				Ratio: r, Min: MinTextContrast, Use: use})
		}
	}
	check(text, bg, "all text")
	check(primary, bg, "links, focus ring, outlined buttons")
	return out
}

// ContrastRatio is the WCAG 2 contrast ratio of two CSS hex colours (#rgb
// or #rrggbb), from 1 to 21.
func ContrastRatio(a, b string) (float64, error) {
	for _, v := range []string{a, b} {
		if !hexColorRE.MatchString(v) {
			return 0, fmt.Errorf("selection: %q is not a CSS hex colour such as #0b57d0", v)
		}
	}
	return contrast(parseHex(a), parseHex(b)), nil
}

func (c Config) colorsValid() bool {
	for _, v := range []string{c.Colors.Primary, c.Colors.Background, c.Colors.Text} {
		if v != "" && !hexColorRE.MatchString(v) {
			return false
		}
	}
	return true
}

// onColor is black or white, whichever contrasts more with c: the label
// of a button filled with c.
func onColor(c rgb) rgb {
	if contrast(rgb{0, 0, 0}, c) > contrast(rgb{255, 255, 255}, c) {
		return rgb{}
	}
	return rgb{255, 255, 255}
}
