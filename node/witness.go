package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/ledger/witness"
	"github.com/aspnode/asp/protocol"
	"github.com/cockroachdb/pebble/v2"
	"github.com/fxamacker/cbor/v2"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
)

// WitnessProtocol is the libp2p protocol on which organisations witness
// each other's ledgers (docs/node.md "Witnessing"): request/response frames
// (p2p.Handle) carrying a C2SP tlog-witness add-checkpoint request and its
// answer.
const WitnessProtocol = "/asp/witness/1.0.0"

// Keys of the witness in the node's state store (secrets.go): the
// witness's latest cosigned state per origin (witness.PebbleStore, its
// check-and-set synced), and, on the log side, the latest of our
// checkpoints each witness cosigned.
var (
	witnessStatePrefix = []byte("witness/state/")
	cosignedPrefix     = []byte("witness/cosigned/")
)

// maxWitnessInFlight bounds the witness requests one peer has in the
// witness at once; more are refused with capacity_unavailable.
const maxWitnessInFlight = 2

// witnessReq is a frame of WitnessProtocol: the add-checkpoint body
// (witness.EncodeRequest) and the log's checkpoint-key certificate
// (ledger.KeyCertificate, JSON), which the witness checks against the
// requesting peer's own identity.
type witnessReq struct {
	Body    []byte `cbor:"1,keyasint"`
	KeyCert []byte `cbor:"2,keyasint"`
}

// witnessResp is the answer to a witnessReq: Code (an ASP code) is set
// when the node refused before its witness decided (unauthorized,
// capacity_unavailable, bad_request) or names the witness's refusal; Body
// is the witness's answer (witness.EncodeResponse) whenever it decided,
// a cosignature or a refusal with its C2SP status.
type witnessResp struct {
	Code    string `cbor:"1,keyasint,omitempty"`
	Message string `cbor:"2,keyasint,omitempty"`
	Body    []byte `cbor:"3,keyasint,omitempty"`
}

// maxWitnessFrame bounds a frame: a request and a certificate.
const maxWitnessFrame = witness.MaxRequestSize + 8<<10

var witnessDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden, TagsMd: cbor.TagsForbidden,
		MaxNestedLevels: 4, MaxArrayElements: 16, MaxMapPairs: 16, ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

func decodeWitnessFrame(b []byte, v any) error {
	if len(b) > maxWitnessFrame {
		return fmt.Errorf("%w: witness frame of %d bytes (max %d)", protocol.ErrMalformed, len(b), maxWitnessFrame)
	}
	if err := witnessDec.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: witness frame: %v", protocol.ErrMalformed, err)
	}
	return nil
}

// witnessing is the node's witness, both sides: the witness it runs for
// its counterparties' logs, and the rounds in which they witness its own
// (witnessround.go).
type witnessing struct {
	w     *witness.Witness
	store *witness.PebbleStore
	db    *pebble.DB

	mu       sync.Mutex
	inFlight map[string]int          // served requests per peer
	rounds   map[string]*witnessPeer // our witnesses, by organisation
	proofs   map[string]heldProof    // equivocation proofs held, by accused organisation

	served  *prometheus.CounterVec // witness requests answered, by code ("" cosigned)
	roundsC *prometheus.CounterVec // our rounds, by outcome
	equivC  *prometheus.CounterVec // equivocation proofs, by outcome
	topic   *pubsub.Topic          // CheckpointsTopic, once joined
}

// openWitness sets up the witness on the node's state store.
func (n *Node) openWitness() error {
	db := n.agents.secrets.db
	store, err := witness.NewPebbleStore(db, witnessStatePrefix)
	if err != nil {
		return err
	}
	w, err := witness.New(witness.Config{Key: n.orgKey, Store: store, Now: n.opts.clock, Verifier: func(string) (note.Verifier, error) {
		return nil, witness.ErrUnknownOrigin // replaced per request (serveWitness)
	}})
	if err != nil {
		return err
	}
	wi := &witnessing{w: w, store: store, db: db, inFlight: map[string]int{}, rounds: map[string]*witnessPeer{},
		proofs: map[string]heldProof{}}
	wi.served = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "asp_witness_requests_total",
		Help: "Witness requests this node answered as a witness, by ASP code (empty: cosigned)."}, []string{"code"})
	wi.roundsC = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "asp_witness_rounds_total",
		Help: "Witnessing rounds of this node's ledger, by outcome."}, []string{"outcome"})
	wi.equivC = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "asp_equivocation_proofs_total",
		Help: "Equivocation proofs, by outcome (built, accepted, refused)."}, []string{"outcome"})
	n.reg.MustRegister(wi.served, wi.roundsC, wi.equivC)
	n.wit = wi
	return n.loadCosigned()
}

// witnessFor returns a witness that resolves only the ledger of org, with
// the certificate org sent: a log is witnessed only with the key its own
// identity certified, and a peer can present only its own log.
func (n *Node) witnessFor(org string, cert *ledger.KeyCertificate) (*witness.Witness, error) {
	return witness.New(witness.Config{Key: n.orgKey, Store: n.wit.store, Now: n.opts.clock, Verifier: func(origin string) (note.Verifier, error) {
		if origin != ledger.OriginFor(org) || cert.Org != org {
			return nil, fmt.Errorf("%w: %s presents the log %q", witness.ErrUnknownOrigin, org, origin)
		}
		return witness.CertifiedVerifier(cert)
	}})
}

// mayWitness reports whether org may ask this node to witness its ledger:
// an organisation with which it holds a commitment, or one named in
// witness.peers.
func (n *Node) mayWitness(org string) bool {
	for _, p := range n.cfg.Witness.Peers {
		if p == org {
			return true
		}
	}
	return n.commitments.any(func(c *commitment) bool { return c.remote.Org == org })
}

// handleWitness serves WitnessProtocol.
func (n *Node) handleWitness(ctx context.Context, from peer.ID, req []byte) ([]byte, error) {
	resp := n.serveWitness(ctx, from.String(), req)
	n.wit.served.WithLabelValues(resp.Code).Inc()
	if resp.Code != "" {
		n.log.Debug("witness request refused", "peer", from, "code", resp.Code, "msg", resp.Message)
	}
	return cbor.Marshal(resp)
}

func (n *Node) serveWitness(ctx context.Context, org string, raw []byte) *witnessResp {
	if !n.mayWitness(org) {
		return &witnessResp{Code: protocol.CodeUnauthorized, Message: "this node witnesses only its counterparties"}
	}
	wi := n.wit
	wi.mu.Lock()
	if wi.inFlight[org] >= maxWitnessInFlight {
		wi.mu.Unlock()
		return &witnessResp{Code: protocol.CodeCapacityUnavailable, Message: "witness requests already in flight"}
	}
	wi.inFlight[org]++
	wi.mu.Unlock()
	defer func() {
		wi.mu.Lock()
		if wi.inFlight[org]--; wi.inFlight[org] == 0 {
			delete(wi.inFlight, org)
		}
		wi.mu.Unlock()
	}()

	var fr witnessReq
	if err := decodeWitnessFrame(raw, &fr); err != nil {
		return &witnessResp{Code: protocol.CodeBadRequest, Message: err.Error()}
	}
	var cert ledger.KeyCertificate
	if err := json.Unmarshal(fr.KeyCert, &cert); err != nil {
		return &witnessResp{Code: protocol.CodeBadRequest, Message: "key certificate: " + err.Error()}
	}
	req, err := witness.DecodeRequest(fr.Body)
	if err != nil {
		return answer(nil, err)
	}
	w, err := n.witnessFor(org, &cert)
	if err != nil {
		return &witnessResp{Code: protocol.CodeInternal, Message: err.Error()}
	}
	cosig, err := w.AddCheckpoint(ctx, *req)
	var eq *witness.EquivocationError
	if errors.As(err, &eq) {
		n.onEquivocation(ctx, eq, &cert)
	}
	if err == nil {
		// The checkpoint is cosigned (durably, in the witness's store):
		// our ledger now commits to the counterparty's head.
		a := ledger.Anchor{Checkpoint: witness.WithCosignature(req.Checkpoint, cosig), KeyCertificate: fr.KeyCert}
		if _, rerr := n.record(ctx, "anchor", ledger.AnchorRecord(n.now(), a)); rerr != nil {
			n.log.Warn("anchor", "org", org, "err", rerr)
		}
	}
	return answer(cosig, err)
}

// answer is the response to an AddCheckpoint result.
func answer(cosig []byte, err error) *witnessResp {
	body, eerr := witness.EncodeResponse(witness.ResponseFor(cosig, err))
	if eerr != nil {
		return &witnessResp{Code: protocol.CodeInternal, Message: eerr.Error()}
	}
	return &witnessResp{Code: witnessCode(err), Body: body}
}

// witnessCode is the ASP code of a witness's refusal.
func witnessCode(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, witness.ErrEquivocation):
		return protocol.CodeEquivocation
	case errors.Is(err, witness.ErrConflict), errors.Is(err, witness.ErrRollback):
		return protocol.CodeConflict
	case errors.Is(err, witness.ErrBadSignature):
		return protocol.CodeInvalidSignature
	case errors.Is(err, witness.ErrUnknownOrigin):
		return protocol.CodeUnauthorized
	case errors.Is(err, witness.ErrMalformed), errors.Is(err, witness.ErrBadProof):
		return protocol.CodeBadRequest
	}
	return protocol.CodeInternal
}
