package node

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/p2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// tryDeal plays the seed scenario on a new session and returns the
// commitment id, or the first error.
func tryDeal(ctx context.Context, p *pair) (string, error) {
	s, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
	if err != nil {
		return "", err
	}
	var id string
	for _, m := range []struct {
		n          *Node
		from, perf string
		price      string
	}{
		{p.buyerNode, p.buyer, "PROPOSE", "2.40"},
		{p.vendorNode, p.vendor, "COUNTER", "2.80"},
		{p.buyerNode, p.buyer, "PROPOSE", "2.55"},
		{p.vendorNode, p.vendor, "ACCEPT", ""},
	} {
		req := api.SendMessageRequest{Performative: m.perf}
		if m.price != "" {
			req.Terms = terms(m.price)
		}
		r, err := m.n.SendMessage(ctx, m.from, s.SessionID, req)
		if err != nil {
			return "", err
		}
		id = r.CommitmentID
	}
	if id == "" {
		return "", errors.New("ACCEPT formed no commitment")
	}
	return id, nil
}

// TestSilentStreamsAtDefaultLimits replays, at the node's default limits,
// hostile identities holding every session stream they can (a header
// announcing 1 MiB, then nothing, reopened when reset) while a counterparty
// with a commitment and a fresh node each close deals. It needs thousands
// of streams, so it runs only with ASP_HOSTILE_STREAMS set to the number of
// hostile identities (3 fill the shared half on any machine up to 16 GiB
// of memory per identity's 1024 streams; more on larger ones);
// p2p.TestSilentStreamsDoNotLockOut proves the same at a small limit.
func TestSilentStreamsAtDefaultLimits(t *testing.T) {
	hostiles, _ := strconv.Atoi(os.Getenv("ASP_HOSTILE_STREAMS"))
	if hostiles <= 0 {
		t.Skip("set ASP_HOSTILE_STREAMS to the number of hostile identities")
	}
	p := newPair(t)
	if _, err := tryDeal(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	fresh := startNode(t, filepath.Join(t.TempDir(), "fresh-org"))
	t.Cleanup(func() { fresh.Close() })
	ra, err := fresh.CreateAgent(context.Background(), api.CreateAgentRequest{Name: "buyer2", Capabilities: []string{"procurement"}})
	if err != nil {
		t.Fatal(err)
	}
	fp := &pair{buyerNode: fresh, vendorNode: p.vendorNode, buyer: ra.AgentID, vendor: p.vendor}
	connect(t, fresh, p.vendorNode)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	attack, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	victim := p.vendorNode.host
	header := []byte{0x80, 0x80, 0x40} // uvarint 1 MiB
	var held atomic.Int64              // hostile streams written and not yet reset
	for range hostiles {
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		h, err := p2p.New(context.Background(), p2p.Config{Key: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		if err := h.Connect(ctx, victim.AddrInfo()); err != nil {
			t.Fatal(err)
		}
		for range 1024 {
			wg.Go(func() { holdSilent(attack, h, victim.ID(), header, &held) })
		}
	}
	// Wait until the hostile streams are held: a thousand at once, or as
	// many as the stall deadline lets them open.
	for held.Load() < 1000 && metric(t, p.vendorNode, "asp_p2p_frames_stalled_total") == 0 {
		if ctx.Err() != nil {
			t.Fatal("the hostile streams were never held")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d hostile streams held", held.Load())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("heap in use %d MiB with the hostile streams held", ms.HeapInuse>>20)

	// The counterparty with a commitment closes 5 deals, each within a
	// generous bound; so does the fresh node, once the hostile peers are
	// cooled off.
	for _, q := range []*pair{p, fp} {
		for i := 0; i < 5; {
			dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
			id, err := tryDeal(dctx, q)
			dcancel()
			if err != nil {
				if ctx.Err() != nil {
					t.Fatalf("%s: deal %d: %v", q.buyerNode.peerID, i, err)
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			awaitActive(t, q.vendorNode, id)
			i++
		}
	}
	for _, name := range []string{"asp_p2p_streams_refused_total", "asp_p2p_frames_stalled_total", "asp_p2p_peers_cooled_off_total"} {
		v := metric(t, p.vendorNode, name)
		t.Logf("%s %v", name, v)
		if v == 0 && name != "asp_p2p_streams_refused_total" {
			t.Errorf("%s is 0", name)
		}
	}
}

// holdSilent keeps one silent session stream from h to victim open,
// reopening it when reset, until ctx ends.
func holdSilent(ctx context.Context, h *p2p.Host, victim peer.ID, header []byte, held *atomic.Int64) {
	for ctx.Err() == nil {
		s, err := h.Host().NewStream(ctx, victim, p2p.SessionProtocol)
		if err != nil {
			return // refused: cooled off
		}
		stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
		if _, err := s.Write(header); err == nil {
			held.Add(1)
			_, _ = s.Read(make([]byte, 1))
			held.Add(-1)
		}
		stop()
		_ = s.Reset()
		sleepCtx(ctx, 50*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
