package broker

import (
	"crypto/rand"
	"encoding/base64"
	"errors"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/pending"
)

// Sign-ins in progress are kept in the browser that started them, in
// sealed cookies bound to that browser (package pending): a start keeps
// nothing on the server.

// cookieScope is o as the broker's /oauth2/ cookies see it (the pending
// logins', the last-used provider's).
func (o origin) cookieScope() pending.Scope {
	return pending.Scope{Secure: o.Secure(), Prefix: o.Prefix}
}

// pendingRefusal is the audit reason of a pending login that was not
// found (pending.ErrNoState, ErrUnknown, ErrOtherBrowser); any other error
// is the store's, and returned.
func pendingRefusal(err error) (audit.Reason, error) {
	switch {
	case err == nil:
		return audit.Reason{}, nil
	case errors.Is(err, pending.ErrNoState):
		return audit.Because(audit.MissingState, err.Error()), nil
	case errors.Is(err, pending.ErrUnknown), errors.Is(err, pending.ErrOtherBrowser):
		return audit.Because(audit.UnknownState, err.Error()), nil
	}
	return audit.Reason{}, err
}

// randomToken returns 32 bytes from crypto/rand, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("broker: crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
