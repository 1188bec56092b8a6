package node

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Agent signing seeds are sealed in the secret store (DIR/state) with a key derived
// from the node's identity:
//
//	key    = HKDF-SHA256(identity Ed25519 seed, salt none, info sealInfo, 32 bytes)
//	sealed = sealVersion || AES-256-GCM(key, random 96-bit nonce, seed, additional data = agent name)
//
// (the nonce travels in front of the ciphertext, as
// cipher.NewGCMWithRandomNonce writes it).
//
// Who could read the seeds, and what stops them: the state files are mode
// 0600 in a 0700 home, so other local users cannot; a copy of the state
// store alone (a backup, a disk image of that directory, a file sent for
// support) yields only sealed seeds, useless without identity.key. A
// sealed seed cannot be moved to another agent's record to sign as that
// agent: the agent's name is authenticated with it. Whoever holds the
// whole home (identity.key too) holds the organisation's identity and can
// unseal every seed: the seal does not protect against that, only an
// agent that keeps its own key does.
const (
	sealInfo    = "asp/1.0 agent-seed seal"
	sealVersion = 1
)

// sealer seals and opens agent seeds.
type sealer struct{ aead cipher.AEAD }

// newSealer derives the sealing key from the node's identity seed.
func newSealer(identitySeed []byte) (*sealer, error) {
	key, err := hkdf.Key(sha256.New, identitySeed, nil, sealInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(name string, seed []byte) []byte {
	return s.aead.Seal([]byte{sealVersion}, nil, seed, []byte(name))
}

// errUnseal: a sealed seed does not open under this node's identity: the
// store belongs to another identity, or was altered.
var errUnseal = errors.New("agent seed does not open under this node's identity key")

func (s *sealer) open(name string, sealed []byte) ([]byte, error) {
	if len(sealed) < 1 || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: unknown seal version", errUnseal)
	}
	seed, err := s.aead.Open(nil, nil, sealed[1:], []byte(name))
	if err != nil {
		return nil, errUnseal
	}
	return seed, nil
}

// privateFS is the operating system's filesystem, but every file it
// creates is made mode 0600 and every directory 0700: Pebble creates its
// files 0666 (less the umask), which left the secret store readable by
// every local user.
type privateFS struct{ vfs.FS }

func (p privateFS) private(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	if err := os.Chmod(name, 0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (p privateFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.Create(name, c)
	return p.private(name, f, err)
}

func (p privateFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := p.FS.OpenReadWrite(name, c, opts...)
	return p.private(name, f, err)
}

func (p privateFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.ReuseForWrite(oldname, newname, c)
	return p.private(newname, f, err)
}

func (p privateFS) Lock(name string) (io.Closer, error) {
	l, err := p.FS.Lock(name)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(name, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (p privateFS) MkdirAll(dir string, perm os.FileMode) error {
	return p.FS.MkdirAll(dir, perm&0o700)
}

// makePrivate sets the mode of dir to 0700 and of every file in it to
// 0600: a store written before privateFS has files of mode 0644.
func makePrivate(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			if err := os.Chmod(filepath.Join(dir, e.Name()), 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}
