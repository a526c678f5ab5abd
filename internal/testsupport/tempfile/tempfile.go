// Package tempfile writes the small files a test's configuration names
// (an htpasswd file, a CA bundle, a password file) into the test's own
// temporary directory, removed when the test ends.
package tempfile

import (
	"os"
	"path/filepath"
	"testing"
)

// Write writes content to a file called name in a new temporary directory
// of t, readable by its owner only, and returns its path.
func Write(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
