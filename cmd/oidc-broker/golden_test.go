package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI's help and check's output are compared with golden files in
// testdata; `go test ./cmd/oidc-broker -run Golden -update` rewrites them
// after an intended change (review the diff).
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update after an intended change):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestGoldenHelp: --help, -h and help list every command and exit 0;
// help <command> and <command> -h show that command's flags, on stdout.
func TestGoldenHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"help"}} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		if code != 0 || errb.Len() > 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
		golden(t, "help/usage.txt", out.String())
		for _, c := range commands() {
			if !strings.Contains(out.String(), "\n  "+c.name+" ") {
				t.Errorf("%v does not list %q", args, c.name)
			}
		}
	}
	for _, c := range commands() {
		if c.run == nil {
			continue
		}
		var viaHelp, viaFlag, errb bytes.Buffer
		if code := run([]string{"help", c.name}, &viaHelp, &errb); code != 0 || errb.Len() > 0 {
			t.Errorf("help %s: exit %d, stderr %q", c.name, code, errb.String())
		}
		if code := run([]string{c.name, "-h"}, &viaFlag, &errb); code != 0 || errb.Len() > 0 {
			t.Errorf("%s -h: exit %d, stderr %q", c.name, code, errb.String())
		}
		if viaHelp.String() != viaFlag.String() {
			t.Errorf("help %s and %s -h differ:\n%s\n%s", c.name, c.name, viaHelp.String(), viaFlag.String())
		}
		golden(t, "help/"+c.name+".txt", viaHelp.String())
	}
}

// TestGoldenCheck: check's text (stdout and stderr) and JSON output for
// each configuration in testdata/check.
func TestGoldenCheck(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "check", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no configurations: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"check", "--config", f}, &out, &errb)
			text := fmt.Sprintf("exit status: %d\n--- stdout\n%s--- stderr\n%s", code, out.String(), errb.String())
			golden(t, "check/"+name+".txt", text)

			out.Reset()
			errb.Reset()
			jcode := run([]string{"check", "--json", "--config", f}, &out, &errb)
			if jcode != code || errb.Len() > 0 {
				t.Errorf("--json: exit %d (text: %d), stderr %q", jcode, code, errb.String())
			}
			var res checkResult
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("--json printed no JSON: %v\n%s", err, out.String())
			}
			if res.OK != (code == 0) || res.OK != (len(res.Problems) == 0) {
				t.Errorf("ok %v with exit %d and %d problems", res.OK, code, len(res.Problems))
			}
			golden(t, "check/"+name+".json", out.String())
			for _, goName := range []string{"broker.", "time.Duration", "providers.Config", "cannot construct", "not found in type"} {
				if strings.Contains(text+out.String(), goName) {
					t.Errorf("the output names %q", goName)
				}
			}
		})
	}
}

// TestServeFailsOnWhatCheckReports: serve refuses to start on exactly the
// problems check reports (one code path), for every invalid file in
// testdata/check.
func TestServeFailsOnWhatCheckReports(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "check", "*.yaml"))
	invalid := 0
	for _, f := range files {
		var checkErr, serveErr bytes.Buffer
		if run([]string{"check", "--config", f}, &bytes.Buffer{}, &checkErr) == 0 {
			continue
		}
		invalid++
		if code := run([]string{"serve", "--config", f}, &bytes.Buffer{}, &serveErr); code != 1 {
			t.Errorf("%s: serve exit %d, want 1", f, code)
		}
		if want := "oidc-broker: " + checkErr.String(); serveErr.String() != want {
			t.Errorf("%s: serve says\n%s\ncheck says\n%s", f, serveErr.String(), checkErr.String())
		}
	}
	if invalid < 4 {
		t.Errorf("only %d invalid files in testdata/check", invalid)
	}
}
