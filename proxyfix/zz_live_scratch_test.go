package proxyfix

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

func freePort(t *testing.T) int {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestZZLive(t *testing.T) {
	cases := map[string]Config{
		"one-hop":   {XFor: 1, XProto: 1, XHost: 1, XPort: 1, From: []string{"127.0.0.1"}},
		"two-hop":   {XFor: 2, XProto: 1, XHost: 1, XPort: 1, XPrefix: 1, From: []string{"127.0.0.1"}},
		"forwarded": {Forwarded: 1, From: []string{"127.0.0.1"}},
	}
	for name, cfg := range cases {
		dir := t.TempDir()
		data := nginxData{Dir: dir, ListenPort: freePort(t), MiddlePort: freePort(t), UpstreamPort: freePort(t)}
		data.CertFile, data.KeyFile = writeSelfSigned(t, dir)
		file := "testdata/nginx/" + name + ".conf.tmpl"
		tmpl := template.Must(template.New(filepath.Base(file)).ParseFiles(file))
		f, _ := os.Create(filepath.Join(dir, "nginx.conf"))
		tmpl.Execute(f, data)
		f.Close()
		fix, _ := New(cfg, nil)
		l, _ := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", data.UpstreamPort))
		srv := &http.Server{Handler: fix.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fc := FromRequest(r)
			fmt.Fprintf(w, "base=%s client=%s trusted=%v path=%s orig=%+v xff=%q xfh=%q fwd=%q", fc.BaseURL(), fc.ClientNode, fc.Trusted, r.URL.Path, fc.Original, r.Header.Values("X-Forwarded-For"), r.Header.Values("X-Forwarded-Host"), r.Header.Values("Forwarded"))
		}))}
		go srv.Serve(l)
		cmd := exec.Command("/usr/sbin/nginx", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr", "-g", "daemon off;")
		cmd.Stderr = os.Stderr
		cmd.Start()
		time.Sleep(300 * time.Millisecond)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		p := "/x"
		if name == "two-hop" {
			p = "/auth/x"
		}
		for _, host := range []string{"localhost", "evil.example"} {
			req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d%s", data.ListenPort, p), nil)
			req.Host = fmt.Sprintf("%s:%d", host, data.ListenPort)
			req.Header.Set("X-Forwarded-For", "6.6.6.6")
			req.Header.Set("X-Forwarded-Host", "evil.example")
			req.Header.Set("X-Forwarded-Proto", "http")
			req.Header.Set("X-Forwarded-Prefix", "/evil")
			req.Header.Set("Forwarded", `for=6.6.6.6;host=evil.example;proto=http`)
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Logf("%s host=%s: %d %s", name, host, resp.StatusCode, strings.TrimSpace(string(b)))
		}
		cmd.Process.Kill()
		cmd.Wait()
		srv.Close()
	}
}
