package protocol

import (
	"crypto/ed25519"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// stdlibRules makes curve25519-voi accept exactly the signatures that Go's
// crypto/ed25519 accepts (cofactorless equation, canonical S, the same
// handling of small-order and non-canonical points), so that every node and
// every offline verifier reaches the same verdict. It is about a third
// faster than crypto/ed25519.Verify; verify_test.go checks the two agree.
var stdlibRules = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// verifyEd25519 reports whether sig is pub's Ed25519 signature of msg.
func verifyEd25519(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, stdlibRules)
}
