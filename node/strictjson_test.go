package node

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/aspnode/asp/protocol"
)

// TestReceiptKeyCertificateStrict: a receipt's checkpoint-key certificate
// whose JSON names the key twice (the genuine one last, which encoding/json
// alone keeps) or in another case is refused; the certificate as signed
// passes.
func TestReceiptKeyCertificateStrict(t *testing.T) {
	home := filepath.Join(t.TempDir(), "org")
	n := startNode(t, home)
	defer n.Close()
	createAgents(t, n, 1)
	cp, err := n.led.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r, err := protocol.SignReceipt(n.orgKey, [32]byte{1}, [32]byte{2}, 0, cp)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.checkReceiptCheckpoint(r, n.keyCert); err != nil {
		t.Fatalf("the node's own certificate: %v", err)
	}
	for name, bad := range map[string][]byte{
		"key twice": bytes.Replace(n.keyCert, []byte(`"key":"`), []byte(`"key":"evil+00000000+AAAA","key":"`), 1),
		"Key":       bytes.Replace(n.keyCert, []byte(`"key":`), []byte(`"Key":`), 1),
	} {
		if bytes.Equal(bad, n.keyCert) {
			t.Fatalf("%s: no change in %s", name, n.keyCert)
		}
		if err := n.checkReceiptCheckpoint(r, bad); !errors.Is(err, protocol.ErrBadSignature) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
}
