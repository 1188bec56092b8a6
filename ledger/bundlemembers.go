package ledger

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Reading a bundle's members, from a tar stream or an extracted directory.

// members yields a bundle's files in order.
type members interface {
	next() (name string, r io.Reader, size int64, err error) // io.EOF at the end
	close()
}

type tarMembers struct{ tr *tar.Reader }

func (t *tarMembers) next() (string, io.Reader, int64, error) {
	for {
		h, err := t.tr.Next()
		if err != nil {
			return "", nil, 0, err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
			return h.Name, t.tr, h.Size, nil
		default:
			return "", nil, 0, fmt.Errorf("member %q is not a regular file", h.Name)
		}
	}
}

func (t *tarMembers) close() {}

// dirMembers reads an extracted bundle in member order.
type dirMembers struct {
	dir   string
	names []string
	pos   int
	f     *os.File
}

func (d *dirMembers) next() (string, io.Reader, int64, error) {
	if d.names == nil {
		d.names = []string{memberManifest, memberCertificates, memberCheckpoints}
		ents, err := os.ReadDir(filepath.Join(d.dir, "entries"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", nil, 0, err
		}
		for _, e := range ents {
			d.names = append(d.names, memberEntries+e.Name())
		}
		d.names = append(d.names, memberProofs)
		if _, err := os.Stat(filepath.Join(d.dir, memberCosigned)); err == nil {
			d.names = append(d.names, memberCosigned)
		}
		extras, _ := os.ReadDir(filepath.Join(d.dir, "extra"))
		for _, e := range extras {
			d.names = append(d.names, memberExtra+e.Name())
		}
	}
	d.close()
	if d.pos >= len(d.names) {
		return "", nil, 0, io.EOF
	}
	name := d.names[d.pos]
	d.pos++
	f, err := os.Open(filepath.Join(d.dir, filepath.FromSlash(name)))
	if err != nil {
		return "", nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return "", nil, 0, err
	}
	d.f = f
	return name, bufio.NewReaderSize(f, 1<<20), fi.Size(), nil
}

func (d *dirMembers) close() {
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
}

// maxSmallMember bounds the members read whole (all but entries).
const maxSmallMember = 256 << 20

func readSmall(r io.Reader, size int64) ([]byte, error) {
	if size < 0 || size > maxSmallMember {
		return nil, fmt.Errorf("member of %d bytes", size)
	}
	b := make([]byte, size)
	_, err := io.ReadFull(r, b)
	return b, err
}
