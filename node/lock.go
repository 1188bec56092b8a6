package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile is the file in a node's home that a running node holds locked
// (flock, exclusive) and that names its process id. The lock ends with the
// process, however it ends: a lock file left by a killed node is taken over
// by the next start.
const LockFile = "node.lock"

// HomeLockedError is returned by Start when another node runs on the home.
type HomeLockedError struct {
	Home string
	// PID is the other node's process id, 0 if unknown.
	PID int
}

func (e *HomeLockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("another asp node (pid %d) is running on this home (%s): stop it first, or give another --home", e.PID, e.Home)
	}
	return fmt.Sprintf("another asp node is running on this home (%s): stop it first, or give another --home", e.Home)
}

// homeLock is a held lock on a node's home.
type homeLock struct {
	f *os.File
}

// lockHome takes the home's lock and writes our pid into it.
func lockHome(home string) (*homeLock, error) {
	path := filepath.Join(home, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock home: %w", err)
	}
	if err := flockExclusive(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, &HomeLockedError{Home: home, PID: LockedPID(home)}
		}
		return nil, fmt.Errorf("lock home %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		_ = f.Sync()
	}
	return &homeLock{f: f}, nil
}

// release empties the lock file and releases the lock.
func (l *homeLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close() // closing the descriptor releases the flock
	l.f = nil
	return err
}

// LockedPID returns the process id written in the home's lock file, or 0.
// It does not say whether that process still holds the lock (HomeLocked).
func LockedPID(home string) int {
	b, err := os.ReadFile(filepath.Join(home, LockFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// HomeLocked reports whether a running node holds the home's lock, and its
// pid if known. It takes the lock for an instant when nobody holds it.
func HomeLocked(home string) (bool, int) {
	if !flockSupported {
		// No flock here: a present api file is the best sign of a node.
		_, err := os.Stat(filepath.Join(home, APIFile))
		return err == nil, LockedPID(home)
	}
	f, err := os.OpenFile(filepath.Join(home, LockFile), os.O_RDWR, 0)
	if err != nil {
		return false, 0
	}
	defer f.Close()
	if err := flockExclusive(f); errors.Is(err, errLocked) {
		return true, LockedPID(home)
	}
	return false, 0
}

var errLocked = errors.New("locked")
