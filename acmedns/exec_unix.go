//go:build unix

package acmedns

import (
	"os/exec"
	"syscall"
)

// killGroup starts the hook in its own process group and has a timeout kill
// the whole group, so that a shell script's children die with it and
// release its output pipes.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
