//go:build !linux

package testenv

import (
	"os"
	"os/exec"
)

// The control plane is built and tested on Linux; elsewhere the processes
// are stopped one by one and nothing kills them if the test binary dies.

func kubeProcAttr(*exec.Cmd) {}

func kubeTerminate(cmd *exec.Cmd) { _ = cmd.Process.Signal(os.Interrupt) }

func kubeKill(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
