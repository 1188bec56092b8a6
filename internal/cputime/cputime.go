//go:build unix

// Package cputime reads the CPU time a process has used. Benchmarks report
// it next to the wall clock: on a machine shared with other work it
// measures the work done rather than the waiting.
package cputime

import (
	"syscall"
	"time"
)

// Process returns the user and system CPU time this process has used so
// far, or 0 if it cannot be read.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
