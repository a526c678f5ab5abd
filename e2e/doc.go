// Package e2e holds the end-to-end tests of oidc-broker: the real binary, started as a
// subprocess, driven by a real headless Chromium through the Chrome DevTools Protocol.
//
// The tests carry the build tag e2e, so a plain "go test ./..." skips them. Run them with
//
//	go test -race -count=1 -tags e2e ./e2e/...
//
// or through ./scripts/test, which first installs Chromium when it is missing. Screenshots
// and the HTML of the page of a failed browser test go to the directory named by the
// environment variable E2E_ARTIFACTS (default: oidc-broker-e2e-artifacts in the system
// temporary directory).
package e2e
