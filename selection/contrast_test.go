package selection

import (
	"math"
	"strings"
	"testing"
)

func TestContrastProblems(t *testing.T) {
	for _, tt := range []struct {
		name   string
		colors Colors
		want   []string // the Keys of each problem, "fg|bg"
	}{
		{"defaults", Colors{}, nil},
		{"dark theme", Colors{Primary: "#8ab4f8", Background: "#202124", Text: "#e8eaed"}, nil},
		{"purple brand", Colors{Primary: "#6b21a8"}, nil},
		{"pale text", Colors{Text: "#aaaaaa"}, []string{"colors.text|colors.background (default)"}},
		{"yellow primary", Colors{Primary: "#ffff00"}, []string{"colors.primary|colors.background (default)"}},
		{"invalid colour is Validate's", Colors{Primary: "blue"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range ContrastProblems(Config{Colors: tt.colors}) {
				got = append(got, p.Keys[0]+"|"+p.Keys[1])
				if p.Ratio >= p.Min || p.Min != MinTextContrast {
					t.Errorf("%s: ratio %.2f, min %.1f", p, p.Ratio, p.Min)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("problems %q, want %q", got, tt.want)
			}
		})
	}
}

func TestContrastRatio(t *testing.T) {
	r, err := ContrastRatio("#000", "#ffffff")
	if err != nil || math.Abs(r-21) > 0.01 {
		t.Errorf("black on white = %v, %v", r, err)
	}
	if r, _ := ContrastRatio("#777777", "#ffffff"); math.Abs(r-4.48) > 0.01 {
		t.Errorf("#777 on white = %.3f, want 4.48", r)
	}
	if _, err := ContrastRatio("red", "#fff"); err == nil || !strings.Contains(err.Error(), `"red"`) {
		t.Errorf("err = %v", err)
	}
}
