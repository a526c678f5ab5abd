package selection

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

//go:embed static/select.js
var staticFS embed.FS

// MaxImageSize is the largest icon or logo file the page accepts.
const MaxImageSize = 64 << 10

// Asset is a file the page links to and the broker serves from memory under
// /oauth2/static/: a provider's icon, the logo, the page's script. Images
// are read once, at start-up, from local files: the page never links to
// another site.
type Asset struct {
	// ContentType is sniffed from the content, never taken from the file
	// name: image/png, image/svg+xml, image/x-icon, image/webp, or
	// text/javascript for the page's own script.
	ContentType string
	// Hash identifies the content (hex SHA-256, shortened); links carry it
	// as ?v= so that a changed file gets a new URL and the old one can be
	// cached for a year.
	Hash string
	Data []byte
}

// SVG reports whether the asset is an SVG image, which the broker serves
// with a Content-Security-Policy that keeps any script in it from running.
func (a Asset) SVG() bool { return a.ContentType == "image/svg+xml" }

func newAsset(contentType string, data []byte) Asset {
	sum := sha256.Sum256(data)
	return Asset{ContentType: contentType, Hash: hex.EncodeToString(sum[:8]), Data: data}
}

// LoadImage reads a local PNG, SVG, ICO or WebP file of at most
// MaxImageSize bytes. A URL is refused: icons and logos are served by the
// broker, never hot-linked.
func LoadImage(path string) (Asset, error) {
	if path == "" {
		return Asset{}, errors.New("is empty")
	}
	if looksLikeURL(path) {
		return Asset{}, fmt.Errorf("%q is a URL; give a local file (the broker serves images itself and never links to other sites)", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return Asset{}, fmt.Errorf("cannot read the image: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxImageSize+1))
	if err != nil {
		return Asset{}, fmt.Errorf("cannot read the image: %w", err)
	}
	if len(data) > MaxImageSize {
		return Asset{}, fmt.Errorf("%s is larger than %d KiB", path, MaxImageSize>>10)
	}
	ct := sniffImage(data)
	if ct == "" {
		return Asset{}, fmt.Errorf("%s is not a PNG, SVG, ICO or WebP image", path)
	}
	return newAsset(ct, data), nil
}

func looksLikeURL(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "://") || strings.HasPrefix(l, "data:") || strings.HasPrefix(l, "http:") ||
		strings.HasPrefix(l, "https:") || strings.HasPrefix(l, "//")
}

// sniffImage returns the content type of an accepted image, or "".
func sniffImage(data []byte) string {
	switch ct := http.DetectContentType(data); ct {
	case "image/png", "image/webp", "image/x-icon":
		return ct
	case "image/vnd.microsoft.icon":
		return "image/x-icon"
	}
	if isSVG(data) {
		return "image/svg+xml"
	}
	return ""
}

// isSVG reports whether data is XML whose root element is <svg>.
func isSVG(data []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local == "svg"
		}
	}
}

// script is the page's progressive enhancement: live filtering of the list.
var script = func() Asset {
	data, err := staticFS.ReadFile("static/select.js")
	if err != nil {
		panic(err) // embedded at build time
	}
	return newAsset("text/javascript; charset=utf-8", data)
}()
