package latest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the re-executed test binary if the
// parent dies first (for instance when go test gives up on it).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
