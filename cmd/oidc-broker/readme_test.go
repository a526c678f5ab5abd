package main

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeCommands: the README keeps exactly two set-up commands (the
// demo and the test suite), and every oidc-broker command it names, with
// its flags, is one the binary has (in code spans and blocks: `oidc-broker
// check --config FILE`).
func TestReadmeCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	var setup []string
	for _, b := range blocks {
		setup = append(setup, strings.TrimSpace(b[1]))
	}
	if want := []string{"go run ./cmd/oidc-broker demo", "./scripts/test"}; strings.Join(setup, "\n") != strings.Join(want, "\n") {
		t.Errorf("the README's set-up commands are %q, want %q", setup, want)
	}
	if _, err := os.Stat("../../scripts/test"); err != nil {
		t.Errorf("./scripts/test: %v", err)
	}

	uses := regexp.MustCompile("(?m)(?:`|^)(?:oidc-broker|go run ./cmd/oidc-broker) ([a-z]+)((?: --?[a-z-]+(?: [^-` ][^` ]*)?)*)").FindAllStringSubmatch(string(readme), -1)
	if len(uses) < 4 {
		t.Fatalf("found only %d commands in the README", len(uses))
	}
	for _, u := range uses {
		c, ok := findCommand(u[1])
		if !ok {
			t.Errorf("the README names %q, which is not a command", u[0])
			continue
		}
		if c.run == nil {
			continue
		}
		flags := commandFlags(t, c)
		for _, f := range regexp.MustCompile(`--?([a-z-]+)`).FindAllStringSubmatch(u[2], -1) {
			if !flags[f[1]] {
				t.Errorf("the README's %q: %s has no flag --%s", u[0], c.name, f[1])
			}
		}
	}
}

// commandFlags are the names of c's flags, read from its help.
func commandFlags(t *testing.T, c command) map[string]bool {
	var out bytes.Buffer
	if code := c.run([]string{"-h"}, &out, io.Discard); code != 0 {
		t.Fatalf("%s -h: exit %d", c.name, code)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(out.String(), -1) {
		names[m[1]] = true
	}
	return names
}
