package proxyfix

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

// nginxData holds the fields of the templates under testdata/nginx, which the e2e tests
// render and docs/proxies.md quotes.
type nginxData struct {
	Dir                                  string
	ListenPort, MiddlePort, UpstreamPort int
	CertFile, KeyFile                    string
}

// TestNginxTemplates renders every template and, when nginx is installed, has it check
// the result with `nginx -t`.
func TestNginxTemplates(t *testing.T) {
	files, err := filepath.Glob("testdata/nginx/*.conf.tmpl")
	if err != nil || len(files) != 3 {
		t.Fatalf("templates: %v, %v", files, err)
	}
	nginx, _ := exec.LookPath("nginx")
	if nginx == "" {
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			nginx = "/usr/sbin/nginx"
		}
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			dir := t.TempDir()
			data := nginxData{Dir: dir, ListenPort: 18443, MiddlePort: 18081, UpstreamPort: 18080}
			data.CertFile, data.KeyFile = writeSelfSigned(t, dir)
			tmpl := template.Must(template.New(filepath.Base(file)).Option("missingkey=error").ParseFiles(file))
			var b strings.Builder
			if err := tmpl.Execute(&b, data); err != nil {
				t.Fatal(err)
			}
			conf := b.String()
			for _, want := range []string{"pid " + dir + "/", "error_log stderr;", "client_body_temp_path", "proxy_temp_path",
				"fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path", "listen 127.0.0.1:18443 ssl http2"} {
				if !strings.Contains(conf, want) {
					t.Errorf("rendered config lacks %q", want)
				}
			}
			for _, line := range strings.Split(conf, "\n") {
				if l := strings.TrimSpace(line); strings.HasPrefix(l, "listen ") && !strings.HasPrefix(l, "listen 127.0.0.1:") {
					t.Errorf("listens beyond loopback: %q", l)
				}
			}
			if nginx == "" {
				t.Skip("nginx not installed; rendered only")
			}
			path := filepath.Join(dir, "nginx.conf")
			if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(nginx, "-t", "-p", dir, "-c", path, "-e", "stderr").CombinedOutput()
			if err != nil {
				t.Fatalf("nginx -t: %v\n%s", err, out)
			}
		})
	}
}

// TestNginxTemplatesDocumented checks that docs/proxies.md quotes every template as it is.
func TestNginxTemplatesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/proxies.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/nginx/*.conf.tmpl")
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		quoted := "`proxyfix/testdata/nginx/" + filepath.Base(file) + "`:\n\n```nginx\n" + string(body) + "```\n"
		if !strings.Contains(string(doc), quoted) {
			t.Errorf("docs/proxies.md does not quote %s verbatim", file)
		}
	}
}

// writeSelfSigned writes a certificate for localhost and 127.0.0.1 into dir.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
