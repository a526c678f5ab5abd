//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// The first commands a newcomer types, against the real binary: the help
// lists every command and exits 0, --version and version agree, and no
// configuration file says how to start.
func TestCLIFirstCommands(t *testing.T) {
	runBin := func(dir string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(brokerBinary, args...)
		cmd.Dir = dir
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	dir := t.TempDir()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, errs, code := runBin(dir, args...)
		if code != 0 || errs != "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
		for _, c := range []string{"serve", "check", "demo", "version", "help"} {
			if !strings.Contains(out, "\n  "+c+" ") {
				t.Errorf("%v does not list %s:\n%s", args, c, out)
			}
		}
	}
	v1, _, c1 := runBin(dir, "--version")
	v2, _, c2 := runBin(dir, "version")
	if c1 != 0 || c2 != 0 || v1 != v2 || !strings.HasPrefix(v1, "oidc-broker ") {
		t.Errorf("--version %q (exit %d), version %q (exit %d)", v1, c1, v2, c2)
	}
	out, errs, code := runBin(dir)
	if code != 1 || out != "" || !strings.Contains(errs, "oidc-broker demo") || !strings.Contains(errs, "--config FILE") {
		t.Errorf("no arguments, no broker.yaml: exit %d, stdout %q, stderr:\n%s", code, out, errs)
	}
	if _, errs, code := runBin(dir, "demo", "--listen", "0.0.0.0:0"); code != 2 || !strings.Contains(errs, "--allow-remote") {
		t.Errorf("demo on every interface: exit %d, stderr:\n%s", code, errs)
	}
}
