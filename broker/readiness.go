package broker

import "github.com/oidc-broker/oidc-broker/broker/readiness"

// ReadinessConfig says what /readyz requires besides the session store
// (readiness.Config).
type ReadinessConfig = readiness.Config

// DefaultIdPCheckInterval is ReadinessConfig.IdPCheckInterval's default.
const DefaultIdPCheckInterval = readiness.DefaultIdPCheckInterval
