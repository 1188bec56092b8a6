// Package privfile copies files that must stay private to their owner.
package privfile

import (
	"io"
	"os"
)

// Copy copies src to dst, a new file (it must not exist) readable and
// writable by its owner only (0600).
func Copy(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
