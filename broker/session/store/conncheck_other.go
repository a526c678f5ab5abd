//go:build !unix

package store

import "errors"

var errClosedByServer = errors.New("connection closed by the server while idle")

// closedByServer cannot tell without the Unix socket calls: the command's
// failure says it (a commit then fails once instead of retrying).
func (c *sentConn) closedByServer() bool { return false }
