package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/ledger/witness"
	"github.com/aspnode/asp/protocol"
	"github.com/cockroachdb/pebble/v2"
	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Rounds: the node asks its witnesses — the organisations it has live
// commitments with, and those named in witness.peers — to cosign its
// latest checkpoint, after each commitment's receipt exchange and every
// witness.interval. At most one round per witness is in flight; a round
// asked for meanwhile runs once after it (coalesced).
//
// The cosignatures of our own checkpoints are kept in the state store
// (key "witness/cosigned/" + witness), not in the ledger: a record of one would grow the
// log it attests to, and the next round would have a new head to cosign.
// For the same reason a round is skipped when the only entries since the
// last cosigned size are anchors (our cosignatures of the others' heads,
// which their own rounds bring): two nodes witnessing each other settle
// instead of asking each other forever.

// witnessPeer is one of our witnesses. Guarded by witnessing.mu.
type witnessPeer struct {
	org     string
	running bool // a round is in flight
	again   bool // another round was asked for meanwhile

	size    uint64    // the size it last cosigned (0: none)
	root    [32]byte  // and its root
	cp      []byte    // that checkpoint of ours
	cosig   []byte    // and its cosignature line
	at      time.Time // the cosignature's time
	lastErr string    // why the last round failed, if it did
	tried   time.Time // when the last round ended
}

// cosignedRec is the stored form of a witness's latest cosignature of our
// ledger: the checkpoint and the cosignature line.
type cosignedRec struct {
	Checkpoint []byte `cbor:"1,keyasint"`
	Cosig      []byte `cbor:"2,keyasint"`
}

// ownCheckpoint verifies and parses a checkpoint of our own ledger.
func (n *Node) ownCheckpoint(signed []byte) (ledger.CheckpointBody, error) {
	var cert ledger.KeyCertificate
	if err := json.Unmarshal(n.keyCert, &cert); err != nil {
		return ledger.CheckpointBody{}, err
	}
	v, err := cert.Verifier()
	if err != nil {
		return ledger.CheckpointBody{}, err
	}
	cp, _, err := ledger.ParseCheckpoint(signed, cert.Origin, v)
	return cp, err
}

// loadCosigned reads the witnesses' latest cosignatures of our ledger.
func (n *Node) loadCosigned() error {
	it, err := n.wit.db.NewIter(&pebble.IterOptions{LowerBound: cosignedPrefix, UpperBound: []byte("witness/cosigned0")})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		org := string(it.Key()[len(cosignedPrefix):])
		var rec cosignedRec
		if err := cbor.Unmarshal(it.Value(), &rec); err != nil {
			return fmt.Errorf("witness state: cosignature of %s: %w", org, err)
		}
		cp, err := n.ownCheckpoint(rec.Checkpoint)
		if err != nil {
			return fmt.Errorf("witness state: cosignature of %s: %w", org, err)
		}
		p := &witnessPeer{org: org, size: cp.Size, root: cp.Root, cp: rec.Checkpoint, cosig: rec.Cosig}
		if vkey, err := witness.VerifierKeyFor(org); err == nil {
			p.at, _ = witness.VerifyCosignature(rec.Checkpoint, rec.Cosig, vkey)
		}
		n.wit.rounds[org] = p
	}
	return it.Error()
}

// witnessSoon asks for a round with org's witness (coalesced).
func (n *Node) witnessSoon(org string) {
	wi := n.wit
	if wi == nil || n.ctx.Err() != nil {
		return
	}
	wi.mu.Lock()
	p := wi.rounds[org]
	if p == nil {
		p = &witnessPeer{org: org}
		wi.rounds[org] = p
	}
	if p.running {
		p.again = true
		wi.mu.Unlock()
		return
	}
	p.running = true
	wi.mu.Unlock()
	n.spawn(func() {
		for {
			n.witnessRound(n.ctx, p)
			wi.mu.Lock()
			if !p.again || n.ctx.Err() != nil {
				p.running = false
				wi.mu.Unlock()
				return
			}
			p.again = false
			wi.mu.Unlock()
		}
	})
}

// witnessAll asks every witness for a round: the organisations with live
// commitments and those named in witness.peers.
func (n *Node) witnessAll() {
	orgs := map[string]bool{}
	for _, c := range n.commitments.list(func(c *commitment) bool { return !c.settled.Load() }) {
		orgs[c.remote.Org] = true
	}
	for _, p := range n.cfg.Witness.Peers {
		orgs[p] = true
	}
	for org := range orgs {
		n.witnessSoon(org)
	}
}

// witnessRound presents our latest checkpoint to p's witness, from the
// size it last cosigned; on a conflict it retries once from the size the
// witness names.
func (n *Node) witnessRound(ctx context.Context, p *witnessPeer) {
	outcome, err := n.witnessOnce(ctx, p)
	n.wit.roundsC.WithLabelValues(outcome).Inc()
	n.wit.mu.Lock()
	p.tried = n.now()
	p.lastErr = ""
	if err != nil {
		p.lastErr = err.Error()
	}
	n.wit.mu.Unlock()
	if err != nil {
		n.log.Info("witness round", "witness", p.org, "outcome", outcome, "err", err)
	}
}

func (n *Node) witnessOnce(ctx context.Context, p *witnessPeer) (string, error) {
	cp, err := n.led.Checkpoint(ctx)
	if err != nil {
		return "failed", err
	}
	body, err := n.ownCheckpoint(cp)
	if err != nil {
		return "failed", err
	}
	n.wit.mu.Lock()
	old, oldRoot := p.size, p.root
	n.wit.mu.Unlock()
	if body.Size == old && body.Root == oldRoot {
		return "current", nil
	}
	if old > 0 && old < body.Size && n.onlyAnchorsSince(old, body.Size) {
		return "current", nil
	}
	if old > body.Size {
		old = 0 // the witness holds more of our log than we do: it names its size
	}
	vkey, err := witness.VerifierKeyFor(p.org)
	if err != nil {
		return "failed", err
	}
	for attempt := 0; ; attempt++ {
		req, err := witness.NewRequest(n.led, old, cp)
		if err != nil {
			return "failed", err
		}
		r, code, err := n.askWitness(ctx, p.org, req)
		if err != nil {
			return "unreachable", err
		}
		if code == protocol.CodeEquivocation {
			return "equivocation", r.Err()
		}
		var conflict *witness.ConflictError
		switch err := r.Err(); {
		case err == nil:
			at, err := witness.VerifyCosignature(cp, r.Cosignature, vkey)
			if err != nil {
				return "bad_cosignature", err
			}
			if err := n.keepCosigned(p, cp, r.Cosignature, body, at); err != nil {
				return "failed", err
			}
			return "cosigned", nil
		case errors.As(err, &conflict) && attempt == 0 && conflict.Size != old && conflict.Size <= body.Size:
			old = conflict.Size
		default:
			if errors.As(err, &conflict) {
				return "conflict", fmt.Errorf("witness cosigned size %d, ours is %d: %w", conflict.Size, body.Size, err)
			}
			return "refused", err
		}
	}
}

// onlyAnchorsSince reports whether the entries from index from to size
// are all anchors.
func (n *Node) onlyAnchorsSince(from, size uint64) bool {
	for i := size; i > from; i-- {
		e, err := n.led.Entry(i - 1)
		if err != nil || e.Kind != ledger.KindAnchor {
			return false
		}
	}
	return true
}

// keepCosigned stores a verified cosignature of our checkpoint cp.
func (n *Node) keepCosigned(p *witnessPeer, cp, cosig []byte, body ledger.CheckpointBody, at time.Time) error {
	v, err := cbor.Marshal(cosignedRec{Checkpoint: cp, Cosig: cosig})
	if err != nil {
		return err
	}
	if err := n.wit.db.Set(append(bytes.Clone(cosignedPrefix), p.org...), v, pebble.Sync); err != nil {
		return err
	}
	n.wit.mu.Lock()
	p.size, p.root, p.cp, p.cosig, p.at = body.Size, body.Root, cp, cosig, at
	n.wit.mu.Unlock()
	return nil
}

// askWitness sends an add-checkpoint request to org's witness through the
// driver and returns the witness's answer.
func (n *Node) askWitness(ctx context.Context, org string, req *witness.Request) (*witness.Response, string, error) {
	body, err := witness.EncodeRequest(req)
	if err != nil {
		return nil, "", err
	}
	var resp *witnessResp
	err = n.drive(ctx, &step{what: "witness", to: org, witness: &witnessReq{Body: body, KeyCert: n.keyCert},
		settle: func(o *outcome) (*step, error) {
			resp = o.wack
			return nil, o.err
		}})
	if err != nil {
		return nil, "", err
	}
	if len(resp.Body) == 0 {
		return nil, resp.Code, &RemoteRefusal{Code: resp.Code, Message: resp.Message}
	}
	r, err := witness.DecodeResponse(resp.Body)
	return r, resp.Code, err
}

// requestWitness sends one WitnessProtocol frame to org's node (drive).
func (n *Node) requestWitness(ctx context.Context, org string, req *witnessReq) (*witnessResp, error) {
	pid, err := peer.Decode(org)
	if err != nil {
		return nil, err
	}
	if n.host == nil {
		return nil, errorf(protocol.CodeUnavailable, "no network")
	}
	b, err := cbor.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	out, err := n.host.Request(ctx, pid, WitnessProtocol, b)
	if err != nil {
		return nil, err
	}
	var resp witnessResp
	if err := decodeWitnessFrame(out, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
