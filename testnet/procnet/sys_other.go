//go:build !unix

package procnet

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
