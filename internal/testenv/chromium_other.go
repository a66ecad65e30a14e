//go:build !linux

package testenv

import "testing"

// Chromium: the browser tests run on Linux (Debian's chromium).
type Chromium struct{ WebSocketURL string }

// StartChromium skips the test outside Linux.
func StartChromium(t testing.TB, width, height int) *Chromium {
	t.Skip("the browser tests run on Linux, with Debian's chromium")
	return nil
}

// Stop does nothing.
func (c *Chromium) Stop() {}
