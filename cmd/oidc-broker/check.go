package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/broker"
	"github.com/oidc-broker/oidc-broker/broker/configcheck"
	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/providers/all"
	"github.com/oidc-broker/oidc-broker/providers/presets"
)

// check validates a configuration file; with --online it also asks every
// identity provider what the broker will rely on (providers.Types.Probe). The
// exit status is 1 when the file is invalid or a provider has an error, 2
// on bad flags.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := fs.String("config", defaultConfig, "configuration file")
	online := fs.Bool("online", false, "also reach every identity provider: discovery, keys, what it supports")
	timeout := fs.Duration("timeout", 10*time.Second, "with --online: how long each provider may take")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "check: --timeout must be positive")
		return 2
	}
	cfg, err := broker.LoadConfig(*path)
	if err != nil {
		return checkFailed(err, *path, flagSet(fs, "config"), *asJSON, stdout, stderr)
	}
	res := checkResult{Config: *path, OK: true, Problems: []checkProblem{}, Warnings: append([]string{}, cfg.Warnings()...)}
	res.warningLines = warningLines(*path, res.Warnings)
	for _, pc := range cfg.Providers {
		if base, settings, ok := presets.Settings(pc); ok {
			res.Presets = append(res.Presets, presetDefaults{Provider: pc.ID, Type: pc.Type, Base: base, Settings: settings})
		}
	}
	if *online {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		res.Providers = all.Types().ProbeAll(ctx, cfg.Providers, &http.Client{Timeout: *timeout}, *timeout)
		for _, r := range res.Providers {
			res.OK = res.OK && r.Worst() != providers.SeverityError
		}
	}
	if *asJSON {
		writeJSON(stdout, res)
	} else {
		res.write(stdout, len(cfg.Providers), *online)
	}
	if !res.OK {
		return 1
	}
	return 0
}

// checkFailed reports a configuration that could not be loaded: every
// problem with its line, on stderr or as JSON on stdout. The exit status
// is 1.
func checkFailed(err error, path string, explicit, asJSON bool, stdout, stderr io.Writer) int {
	if asJSON {
		res := checkResult{Config: path, Problems: []checkProblem{}, Warnings: []string{}}
		_, named := errors.AsType[*broker.ConfigError](err) // else the file could not be read
		for _, p := range problemList(err) {
			cp := checkProblem{Line: p.Line, Message: p.Message}
			if named {
				cp.Field = problemField(p.Message)
			}
			res.Problems = append(res.Problems, cp)
		}
		writeJSON(stdout, res)
		return 1
	}
	if hint := noConfigHint(err, path, explicit); hint != "" {
		fmt.Fprint(stderr, hint)
		return 1
	}
	fmt.Fprintln(stderr, err)
	return 1
}

var fieldRE = regexp.MustCompile(`^[A-Za-z0-9_]+(\[\d+\])*(\.[A-Za-z0-9_]+(\[\d+\])*)*$`)

// problemField is the YAML path a problem's message starts with ("" when
// it names none, as for a syntax error).
func problemField(msg string) string {
	field, _, ok := strings.Cut(msg, ": ")
	if !ok || !fieldRE.MatchString(field) {
		return ""
	}
	return field
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// checkResult is what check found, and its JSON form (documented in
// docs/operations.md).
type checkResult struct {
	Config    string             `json:"config"`
	OK        bool               `json:"ok"`
	Problems  []checkProblem     `json:"problems"`
	Warnings  []string           `json:"warnings"`
	Presets   []presetDefaults   `json:"presets,omitempty"`
	Providers []providers.Report `json:"providers,omitempty"`

	warningLines []int // of Warnings, in the file (0: unknown)
}

var warningPathRE = regexp.MustCompile(`^([A-Za-z0-9_]+(?:\[\d+\])*(?:\.[A-Za-z0-9_]+(?:\[\d+\])*)*)[: ]`)

// warningLines finds the line of each warning's key in the file at path.
func warningLines(path string, warnings []string) []int {
	data, err := os.ReadFile(path)
	lines := make([]int, len(warnings))
	if err != nil {
		return lines
	}
	for i, w := range warnings {
		if m := warningPathRE.FindStringSubmatch(w); m != nil {
			lines[i] = configcheck.LineOf(data, m[1])
		}
	}
	return lines
}

// checkProblem is one configuration problem: its line (0: unknown), the
// YAML path of its field ("" for a problem of the file, such as its
// syntax) and the message, which starts with that path.
type checkProblem struct {
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// presetDefaults is what a provider's preset type means for it: the
// settings it fills in and what it does beyond them.
type presetDefaults struct {
	Provider string            `json:"provider"`
	Type     string            `json:"type"`
	Base     string            `json:"base"`
	Settings []presets.Setting `json:"settings"`
}

// write prints the result for people: the configuration's warnings, the
// effective settings of each preset, then with online a block per provider
// with one marked line per finding, and a summary.
func (res checkResult) write(w io.Writer, n int, online bool) {
	for i, warning := range res.Warnings {
		if i < len(res.warningLines) && res.warningLines[i] > 0 {
			fmt.Fprintf(w, "warning: line %d: %s\n", res.warningLines[i], warning)
			continue
		}
		fmt.Fprintln(w, "warning:", warning)
	}
	fmt.Fprintf(w, "%s: ok (%d providers)\n", res.Config, n)
	for _, p := range res.Presets {
		fmt.Fprintf(w, "\n%s (%s: the %s provider with these settings; \"configured\" marks yours)\n", p.Provider, p.Type, p.Base)
		for _, s := range p.Settings {
			mark := ""
			if s.Configured {
				mark = "  (configured)"
			}
			fmt.Fprintf(w, "  %-24s %s%s\n", s.Key, s.Value, mark)
		}
	}
	if !online {
		return
	}
	count := map[providers.Severity]int{}
	for _, r := range res.Providers {
		count[r.Worst()]++
		fmt.Fprintln(w)
		if r.Issuer != "" {
			fmt.Fprintf(w, "%s (%s, %s)\n", r.Provider, r.Type, r.Issuer)
		} else {
			fmt.Fprintf(w, "%s (%s)\n", r.Provider, r.Type)
		}
		for _, f := range r.Findings {
			fmt.Fprintf(w, "  %-8s %s: %s\n", f.Severity, f.Check, f.Message)
		}
	}
	fmt.Fprintf(w, "\nonline: %d providers: %d ok, %d with warnings, %d with errors\n",
		len(res.Providers), count[providers.SeverityOK], count[providers.SeverityWarning], count[providers.SeverityError])
}
