package p2p

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// ErrKeyPermissions is returned, wrapped, by LoadOrCreateKey when an existing
// key file can be read or written by its group or by others.
var ErrKeyPermissions = errors.New("p2p: identity key file is accessible by group or others")

// LoadOrCreateKey returns the Ed25519 identity key stored at path, in the
// libp2p marshalled form (crypto.MarshalPrivateKey). When no file exists
// there, it generates a key, writes it with mode 0600 (creating the parent
// directory with mode 0700 if needed), syncs it, and returns it. An existing
// key is never overwritten, even when two processes race to create it.
//
// It refuses a key that is not Ed25519, and (outside Windows) a key file
// whose mode grants any access to group or others (ErrKeyPermissions).
func LoadOrCreateKey(path string) (crypto.PrivKey, error) {
	k, err := loadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k, _, err = crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate identity key: %w", err)
	}
	raw, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal identity key: %w", err)
	}
	if err := writeNewFile(path, raw); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadKey(path) // lost a race: the other key wins
		}
		return nil, fmt.Errorf("write identity key: %w", err)
	}
	return k, nil
}

func loadKey(path string) (crypto.PrivKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v, want 0600", ErrKeyPermissions, path, st.Mode().Perm())
	}
	raw, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return nil, fmt.Errorf("identity key %s: %w", path, err)
	}
	if len(raw) > 4096 {
		return nil, fmt.Errorf("identity key %s: file too large", path)
	}
	k, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("identity key %s: %w", path, err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("identity key %s: key type %v, want Ed25519", path, k.Type())
	}
	return k, nil
}

// writeNewFile writes data to path with mode 0600 via a synced temporary
// file that is hard-linked into place, so that path either does not exist or
// holds all of data. It fails with fs.ErrExist when path already exists.
func writeNewFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmpName, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Ed25519Key returns k as a crypto/ed25519 private key (64 bytes: seed then
// public key). It fails when k is not an Ed25519 key.
func Ed25519Key(k crypto.PrivKey) (ed25519.PrivateKey, error) {
	if k == nil {
		return nil, errors.New("p2p: nil key")
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("p2p: key type %v, want Ed25519", k.Type())
	}
	raw, err := k.Raw()
	if err != nil {
		return nil, fmt.Errorf("p2p: raw key: %w", err)
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("p2p: Ed25519 key has %d bytes, want %d", len(raw), ed25519.PrivateKeySize)
	}
	priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	if !priv.Equal(ed25519.PrivateKey(raw)) {
		return nil, errors.New("p2p: Ed25519 key: public half does not match the seed")
	}
	return priv, nil
}
