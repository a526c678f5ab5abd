package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"runtime/debug"
	"strings"
)

// The command line's help: the list of commands, each command's flags, and
// what to do when there is no configuration file yet.

// command is one subcommand: its name, what it does in a line, and its
// function, which parses its own flags (parseFlags).
type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

// commands are the subcommands in the order the help lists them.
func commands() []command {
	return []command{
		{"serve", "run the broker (the default command); SIGHUP reloads the configuration, SIGTERM drains", serve},
		{"check", "validate a configuration file and print every problem; --online also asks each IdP", check},
		{"demo", "run the broker with two built-in demo IdPs and a demo app, on loopback", runDemo},
		{"version", "print the version", printVersion},
		{"help", "show this help, or a command's flags (oidc-broker help check)", nil},
	}
}

func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// writeUsage prints the list of commands and the first steps.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, `oidc-broker signs users in with any of several OpenID Connect identity providers
and relays one clean identity to the apps behind it.

Usage:
  oidc-broker <command> [flags]
  oidc-broker [serve] --config FILE

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Start here:
  oidc-broker demo                   try it with built-in demo identity providers
  oidc-broker check --config FILE    validate your configuration (docs/config.md)
  oidc-broker --config FILE          run the broker with it

Run 'oidc-broker help <command>' (or '<command> -h') for a command's flags.
`)
}

// help is the help command: the usage, or one command's flags.
func help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		writeUsage(stdout)
		return 0
	}
	c, ok := findCommand(args[0])
	switch {
	case !ok:
		fmt.Fprintf(stderr, "oidc-broker: unknown command %q; 'oidc-broker help' lists them\n", args[0])
		return 2
	case c.run == nil:
		writeUsage(stdout)
		return 0
	}
	return c.run([]string{"-h"}, stdout, stderr)
}

// commandHelp is what each command's help says above its flags.
var commandHelp = map[string]string{
	"serve": `Usage: oidc-broker [serve] [--config FILE] [--shutdown-timeout 20s]

Runs the broker with the configuration FILE (docs/config.md). SIGHUP reloads
FILE; SIGTERM and SIGINT stop accepting connections and let requests in
flight finish (docs/operations.md).
`,
	"check": `Usage: oidc-broker check [--config FILE] [--online [--timeout 10s]] [--json]

Validates FILE as serve would and prints every problem with its line (exit
status 1), or the warnings and "ok" (exit status 0). --online also asks each
identity provider what the broker relies on (docs/operations.md).
`,
	"demo": `Usage: oidc-broker demo [--listen 127.0.0.1:4180] [--allow-remote]

Runs two DEMO-ONLY identity providers, a demo app and the broker in front of
it, on loopback, and prints the URL to open. Nothing here is for production.
`,
	"version": `Usage: oidc-broker version   (or oidc-broker --version)

Prints the version.
`,
}

// parseFlags parses a command's flags. "-h" prints the command's help on
// stdout; a bad flag is named on stderr with where to find the good ones.
// ok is false when the command should return code.
func parseFlags(fset *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fset.SetOutput(stderr)
	fset.Usage = func() {}
	err := fset.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		writeCommandHelp(stdout, fset)
		return 0, false
	case err != nil:
		fmt.Fprintf(stderr, "Run 'oidc-broker help %s' for its flags.\n", fset.Name())
		return 2, false
	case fset.NArg() > 0:
		fmt.Fprintf(stderr, "oidc-broker %s: unexpected argument %q (flags come as --name value); run 'oidc-broker help %s'\n",
			fset.Name(), fset.Arg(0), fset.Name())
		return 2, false
	}
	return 0, true
}

// writeCommandHelp prints a command's help and its flags.
func writeCommandHelp(w io.Writer, fset *flag.FlagSet) {
	fmt.Fprint(w, commandHelp[fset.Name()])
	var n int
	fset.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprint(w, "\nFlags:\n")
	out := fset.Output()
	fset.SetOutput(w)
	fset.PrintDefaults()
	fset.SetOutput(out)
}

// printVersion is the version command (also --version).
func printVersion(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("version", flag.ContinueOnError)
	if code, ok := parseFlags(fset, args, stdout, stderr); !ok {
		return code
	}
	fmt.Fprintln(stdout, "oidc-broker", versionString())
	return 0
}

// versionString is the version set at build time (-ldflags
// "-X main.version=v1.2.3"), else the module's version from the build
// information (go install ...@v1.2.3), else "dev" with the commit when the
// build recorded one.
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	switch {
	case rev == "":
		return "dev"
	case modified == "true":
		return "dev (" + rev + ", modified)"
	}
	return "dev (" + rev + ")"
}

// noConfigHint explains how to start when the configuration file does not
// exist, instead of only "no such file or directory".
func noConfigHint(err error, path string, explicit bool) string {
	if !errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	var b strings.Builder
	if explicit {
		fmt.Fprintf(&b, "oidc-broker: the configuration file %s does not exist.\n", path)
	} else {
		fmt.Fprintf(&b, "oidc-broker: no configuration file (looked for %s in the current directory).\n", path)
	}
	b.WriteString(`
  oidc-broker demo                   try the broker with built-in demo identity providers
  oidc-broker --config FILE          run it with your configuration (docs/config.md)
  oidc-broker help                   list every command
`)
	return b.String()
}
