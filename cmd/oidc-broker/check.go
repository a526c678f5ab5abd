package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/oidc-broker/oidc-broker/broker"
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
	fs.SetOutput(stderr)
	path := fs.String("config", "broker.yaml", "configuration file")
	online := fs.Bool("online", false, "also reach every identity provider: discovery, keys, what it supports")
	timeout := fs.Duration("timeout", 10*time.Second, "with --online: how long each provider may take")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "check: --timeout must be positive")
		return 2
	}
	cfg, err := broker.LoadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	res := checkResult{Config: *path, OK: true, Warnings: append([]string{}, cfg.Warnings()...)}
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
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		res.write(stdout, len(cfg.Providers), *online)
	}
	if !res.OK {
		return 1
	}
	return 0
}

// checkResult is what check found, and its JSON form.
type checkResult struct {
	Config    string             `json:"config"`
	OK        bool               `json:"ok"`
	Warnings  []string           `json:"warnings"`
	Presets   []presetDefaults   `json:"presets,omitempty"`
	Providers []providers.Report `json:"providers,omitempty"`
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
	for _, warning := range res.Warnings {
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
