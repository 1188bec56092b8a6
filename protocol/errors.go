package protocol

import "errors"

// Sentinel errors. Test for them with errors.Is; every error returned by
// this package wraps exactly one of them (ErrorCode maps it to an ASP code).
var (
	ErrMalformed          = errors.New("protocol: malformed")
	ErrNonCanonical       = errors.New("protocol: non-canonical encoding")
	ErrTooLarge           = errors.New("protocol: too large")
	ErrFloat              = errors.New("protocol: number where a decimal string belongs")
	ErrBadDecimal         = errors.New("protocol: bad decimal")
	ErrBadKey             = errors.New("protocol: bad key")
	ErrBadPeerID          = errors.New("protocol: bad peer id")
	ErrBadAgentID         = errors.New("protocol: bad agent id")
	ErrBadCertificate     = errors.New("protocol: bad certificate")
	ErrCertificateExpired = errors.New("protocol: certificate expired")
	ErrBadSignature       = errors.New("protocol: bad signature")
)
