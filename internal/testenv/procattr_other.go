//go:build !linux

package testenv

import "os/exec"

// killWithParent is a no-op where the kernel offers no parent-death signal;
// t.Cleanup still stops the child.
func killWithParent(*exec.Cmd) {}
