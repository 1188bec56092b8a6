package ledger

import (
	"fmt"

	"github.com/aspnode/asp/internal/strictjson"
)

// UnmarshalJSON decodes a key certificate strictly: a key given twice, a
// key in another case than its field's, or an unknown key is refused.
// encoding/json alone would keep the last of two "key" members, so a
// certificate could read as one checkpoint key to a checker and as another
// to a later reader of the same bytes.
func (c *KeyCertificate) UnmarshalJSON(b []byte) error {
	type plain KeyCertificate // without this method
	var p plain
	if err := strictjson.Decode(b, &p); err != nil {
		return fmt.Errorf("key certificate: %w", err)
	}
	*c = KeyCertificate(p)
	return nil
}

// UnmarshalJSON decodes a bundle's manifest strictly, as KeyCertificate's.
func (m *manifest) UnmarshalJSON(b []byte) error {
	type plain manifest
	var p plain
	if err := strictjson.Decode(b, &p); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	*m = manifest(p)
	return nil
}
