package procnet

import "syscall"

// sysProcAttr puts a node in its own process group, so that a Ctrl-C in the
// terminal reaches only the parent, which then stops the nodes in order; and
// asks the kernel to send the node SIGTERM if the parent dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
