package testenv

import (
	"os/exec"
	"syscall"
)

// kubeProcAttr puts a control-plane process in its own process group and
// has the kernel kill it when the test binary dies (e.g. a test timeout), so
// no etcd or API server outlives its test run holding ports.
func kubeProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func kubeTerminate(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

func kubeKill(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
