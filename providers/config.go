package providers

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/crypto"
)

// Token endpoint authentication methods (OpenID Connect Core 1.0 §9).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthNone              = "none"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// Config describes one identity provider. It is plain data, decoded from the
// broker's YAML `providers:` list; Open validates it and builds the runtime
// provider.
type Config struct {
	// ID names the provider in URLs (/oauth2/start/{id}, /oauth2/callback/{id})
	// and in the relayed subject "<id>:<sub>". Lower-case letters, digits,
	// '-' and '_'; at most 64 characters. Required.
	ID string `yaml:"id"`
	// Name is shown on the selection page ("Sign in with <Name>"). Defaults to ID.
	Name string `yaml:"name"`
	// Issuer is the OpenID Provider's issuer URL, exactly as its discovery
	// document states it (a trailing slash matters). Required.
	Issuer string `yaml:"issuer"`
	// ClientID is the broker's client_id at this IdP. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the broker's client secret; use ${VAR} in the file.
	// Required unless TokenEndpointAuthMethod is "none".
	ClientSecret string `yaml:"client_secret"`
	// Scopes requested. Default: openid, email, profile. "openid" is always added.
	Scopes []string `yaml:"scopes"`
	// TokenEndpointAuthMethod is client_secret_basic (default),
	// client_secret_post, private_key_jwt, or none (a public client; PKCE
	// protects the code).
	TokenEndpointAuthMethod string `yaml:"token_endpoint_auth_method"`
	// PrivateKeyFile is the PEM private key (RSA, ECDSA P-256 or Ed25519;
	// PKCS#1 or PKCS#8) that signs the client assertion with
	// private_key_jwt. Its public key is registered at the IdP.
	PrivateKeyFile string `yaml:"private_key_file"`
	// PrivateKeyID is the kid of that key, as registered at the IdP.
	PrivateKeyID string `yaml:"private_key_id"`
	// Userinfo controls the userinfo call after the code exchange: "auto"
	// (default: call it when the IdP publishes a userinfo_endpoint), "always"
	// (fail the login when it cannot be read) or "never".
	Userinfo string `yaml:"userinfo"`
	// IDTokenSigningAlgs restricts the accepted ID token algorithms. Default:
	// the asymmetric algorithms the IdP advertises. Symmetric (HS*) and "none"
	// are never accepted.
	IDTokenSigningAlgs []string `yaml:"id_token_signing_algs"`
	// RequireIssParameter refuses callbacks without the RFC 9207 `iss`
	// parameter even when the IdP's metadata does not announce it.
	RequireIssParameter bool `yaml:"require_iss_parameter"`
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// asymmetricAlgs are the JWS algorithms accepted for ID tokens.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Validate reports every problem in c, each prefixed with its YAML key.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.ID == "":
		add("id", "is required")
	case !idPattern.MatchString(c.ID):
		add("id", "%q must be lower-case letters, digits, '-' or '_' (at most 64, starting with a letter or digit)", c.ID)
	}
	if c.Issuer == "" {
		add("issuer", "is required")
	} else if err := checkIssuer(c.Issuer); err != nil {
		add("issuer", "%q %v", c.Issuer, err)
	}
	if c.ClientID == "" {
		add("client_id", "is required")
	}
	switch c.TokenEndpointAuthMethod {
	case "", AuthClientSecretBasic, AuthClientSecretPost:
		if c.ClientSecret == "" {
			add("client_secret", "is required with token_endpoint_auth_method %s (use \"none\" for a public client)", c.authMethod())
		}
	case AuthNone:
		if c.ClientSecret != "" {
			add("client_secret", "must be empty with token_endpoint_auth_method none")
		}
	case AuthPrivateKeyJWT:
		if c.ClientSecret != "" {
			add("client_secret", "must be empty with token_endpoint_auth_method private_key_jwt")
		}
		if c.PrivateKeyFile == "" {
			add("private_key_file", "is required with token_endpoint_auth_method private_key_jwt")
		} else if _, err := loadPrivateKey(c.PrivateKeyFile); err != nil {
			add("private_key_file", "%v", err)
		}
	default:
		add("token_endpoint_auth_method", "%q is not one of client_secret_basic, client_secret_post, private_key_jwt, none", c.TokenEndpointAuthMethod)
	}
	if c.PrivateKeyFile != "" && c.TokenEndpointAuthMethod != AuthPrivateKeyJWT {
		add("private_key_file", "is only used with token_endpoint_auth_method private_key_jwt")
	}
	switch c.Userinfo {
	case "", "auto", "always", "never":
	default:
		add("userinfo", "%q is not one of auto, always, never", c.Userinfo)
	}
	for i, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			add(fmt.Sprintf("scopes[%d]", i), "%q is not a valid scope", s)
		}
	}
	for i, a := range c.IDTokenSigningAlgs {
		if !slices.Contains(asymmetricAlgs, a) {
			add(fmt.Sprintf("id_token_signing_algs[%d]", i), "%q is not one of %s", a, strings.Join(asymmetricAlgs, ", "))
		}
	}
	return errors.Join(errs...)
}

// loadPrivateKey reads a PEM private key file and checks that it parses.
func loadPrivateKey(path string) ([]byte, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", path, errors.Unwrap(err))
	}
	if _, _, err := crypto.BytesToPrivateKey(pemBytes); err != nil {
		return nil, fmt.Errorf("%q is not a PEM RSA, ECDSA or Ed25519 private key: %w", path, err)
	}
	return pemBytes, nil
}

func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
		return errors.New("must be an https URL (http only for loopback hosts)")
	case u.Host == "":
		return errors.New("has no host")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not contain userinfo, query or fragment")
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1" || strings.HasPrefix(host, "127.")
}

func (c Config) authMethod() string {
	if c.TokenEndpointAuthMethod == "" {
		return AuthClientSecretBasic
	}
	return c.TokenEndpointAuthMethod
}

func (c Config) displayName() string {
	if c.Name == "" {
		return c.ID
	}
	return c.Name
}

func (c Config) scopes() []string {
	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = []string{"openid", "email", "profile"}
	}
	if !slices.Contains(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...)
	}
	return scopes
}
