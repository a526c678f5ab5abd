package broker

import (
	"fmt"
	"os"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/configcheck"
	"github.com/oidc-broker/oidc-broker/providers"
)

// ConfigError lists every problem found in a configuration file, each with
// the line it was found at when known.
type ConfigError struct {
	File     string
	Problems []Problem
}

// Problem is one configuration problem: its line (0 when unknown) and its
// message, which starts with the field's YAML path.
type Problem = configcheck.Problem

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if p.Line > 0 {
			fmt.Fprintf(&b, "line %d: ", p.Line)
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// LoadConfig reads, expands, strictly decodes and validates a YAML file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("broker: %w", err)
	}
	return ParseConfig(path, data, os.LookupEnv)
}

// ParseConfig decodes data strictly (an unknown or duplicate key is an
// error naming it and its line), expands ${VAR} in string values with
// lookup, and validates the result. name labels the errors.
//
// Expansion happens on parsed values, never on the raw text, so a secret
// containing YAML syntax cannot change the document's structure. Only the
// ${NAME} form is expanded; "$$" is a literal "$". An unset variable is an
// error.
func ParseConfig(name string, data []byte, lookup func(string) (string, bool)) (Config, error) {
	var cfg Config
	validate := func() []error { return providers.Flatten(cfg.Validate()) }
	if problems := configcheck.Load(data, lookup, &cfg, validate); len(problems) > 0 {
		return Config{}, &ConfigError{File: name, Problems: problems}
	}
	return cfg, nil
}
