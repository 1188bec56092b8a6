package privfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopy(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.WriteFile(src, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Copy(src, dst); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	fi, _ := os.Stat(dst)
	if err != nil || string(b) != "secret" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy: %q %v %v", b, fi.Mode(), err)
	}
	if err := Copy(src, dst); err == nil {
		t.Fatal("a copy over an existing file")
	}
}
