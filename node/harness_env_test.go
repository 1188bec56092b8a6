package node

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestHarness runs the transcripts in testdata/harness: real nodes (real
// signatures, Pebble on a crashable in-memory filesystem) whose network is
// a queue the transcript delivers from, and whose clock moves only on
// tick. go test ./node -run TestHarness -rewrite regenerates the expected
// output; HARNESS_LOG=1 adds the nodes' debug logs.
//
// Commands (a node is named by a letter, an agent as node/name, sessions
// and commitments by the aliases s1, c1, ... the output gives them):
//
//	add-nodes a b               start nodes (identity from the name); add-nodes 2: a and b
//	create-agent a/buyer        an agent on a node
//	open a/buyer b/vendor       a session; the invitation is queued
//	move a/buyer s1 PROPOSE price=2.40 [ref=...]   an agent's move
//	propose a/buyer s1 price=2.40                   the same, PROPOSE
//	action b/vendor c1 fulfill  a commitment action (fulfill, confirm, dispute)
//	deliver [a b] [n=N]         deliver queued requests from a to b (all, or the first N)
//	deliver a b answer=lost     deliver them, but the senders see a transport error
//	drop [a b] [n=N]            fail them: the sender sees a transport error
//	crash b                     b stops as if killed: unsynced writes are lost
//	restart b                   b starts again on what survived
//	tick 2s [a b]               advance the clock; run the nodes' timer work
//	status [a] (or print)       sessions, commitments, pending moves, ledger size
//	queue                       the requests in flight
//
// After every command the harness waits until every operation it started,
// every handler and every piece of background work the nodes spawned has
// finished or waits in the queue; the output lists what happened meanwhile
// (requests queued and answered, operations finished) in order.
func TestHarness(t *testing.T) {
	datadriven.Walk(t, "testdata/harness", func(t *testing.T, path string) {
		e := newHenv(t)
		defer e.close()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			e.t = t
			return e.run(d)
		})
	})
}

// harnessEpoch is the clock's start.
var harnessEpoch = time.Date(2027, 1, 4, 9, 0, 0, 0, time.UTC)

type hnode struct {
	name string
	home string
	peer peer.ID
	fs   *vfs.MemFS
	cur  *hinst // nil while crashed; guarded by hnet.mu
	gen  int    // starts so far
}

// hinst is one run of a node, from start to crash.
type hinst struct {
	name string
	n    *Node
	dead bool // guarded by hnet.mu
}

type henv struct {
	t     testing.TB
	h     *hnet
	clock *hclock
	dir   string
	order []string // node names, in the order added
}

func newHenv(t testing.TB) *henv {
	return &henv{t: t, h: newHnet(), clock: &hclock{t: harnessEpoch}, dir: t.TempDir()}
}

// close fails every request in flight, waits for the nodes' goroutines and
// closes the nodes.
func (e *henv) close() {
	e.h.mu.Lock()
	e.h.closed = true
	e.h.mu.Unlock()
	for _, m := range e.h.take("", "", 0) {
		e.h.drop(m, errDropped)
	}
	e.h.quiesce(e.t)
	for _, name := range e.order {
		if inst := e.h.nodes[name].cur; inst != nil {
			inst.n.Close()
		}
	}
}

func (e *henv) run(d *datadriven.TestData) string {
	var pos []string
	args := map[string]string{}
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 {
			pos = append(pos, a.Key)
		} else {
			args[a.Key] = a.Vals[0]
		}
	}
	var out []string
	switch d.Cmd {
	case "add-nodes":
		if len(pos) == 1 {
			if k, err := strconv.Atoi(pos[0]); err == nil {
				pos = nil
				for i := range k {
					pos = append(pos, string(rune('a'+len(e.order)+i)))
				}
			}
		}
		for _, name := range pos {
			out = append(out, e.addNode(name))
		}
	case "create-agent":
		e.need(pos, 1, d)
		node, name := e.agentRef(pos[0])
		e.op(node, pos[0]+" created", func(n *Node) string {
			_, err := n.CreateAgent(context.Background(), api.CreateAgentRequest{Name: name, Capabilities: []string{"compute.gpu-hours"}})
			return result(err, "ok")
		})
	case "open":
		e.need(pos, 2, d)
		node, _ := e.agentRef(pos[0])
		from, to := e.agentID(pos[0]), e.agentID(pos[1])
		e.op(node, pos[0]+" open", func(n *Node) string {
			s, err := n.OpenSession(context.Background(), from, api.OpenSessionRequest{To: to})
			return result(err, e.h.alias.name("s", s.SessionID)+" "+s.State)
		})
	case "move", "propose":
		if d.Cmd == "propose" {
			e.need(pos, 2, d)
			pos = append(pos[:2:2], "PROPOSE")
		}
		e.need(pos, 3, d)
		node, _ := e.agentRef(pos[0])
		from, sid, perf := e.agentID(pos[0]), e.ref(pos[1]), pos[2]
		req := api.SendMessageRequest{Performative: perf}
		if p, ok := args["price"]; ok {
			req.Terms = terms(p)
		}
		if r, ok := args["ref"]; ok {
			req.ReferenceID = r
		}
		e.op(node, fmt.Sprintf("%s %s %s", pos[0], perf, pos[1]), func(n *Node) string {
			r, err := n.SendMessage(context.Background(), from, sid, req)
			s := fmt.Sprintf("#%d %s", r.SequenceNumber, r.State)
			if r.CommitmentID != "" {
				s += ", formed " + e.h.alias.name("c", r.CommitmentID)
			}
			return result(err, s)
		})
	case "action":
		e.need(pos, 3, d)
		node, _ := e.agentRef(pos[0])
		agent, cid, kind := e.agentID(pos[0]), e.ref(pos[1]), pos[2]
		e.op(node, fmt.Sprintf("%s %s %s", pos[0], kind, pos[1]), func(n *Node) string {
			c, err := n.CommitmentAction(context.Background(), agent, cid, kind, nil)
			return result(err, c.State)
		})
	case "dispute-step":
		e.need(pos, 3, d)
		node, _ := e.agentRef(pos[0])
		agent, did, kind := e.agentID(pos[0]), e.ref(pos[1]), pos[2]
		e.op(node, fmt.Sprintf("%s %s %s", pos[0], kind, pos[1]), func(n *Node) string {
			info, err := n.DisputeStep(context.Background(), agent, did, kind, api.DisputeStepRequest{Remedy: args["remedy"]})
			return result(err, info.State)
		})
	case "deliver", "drop":
		from, to := "", ""
		if len(pos) == 2 {
			from, to = pos[0], pos[1]
		} else if len(pos) != 0 {
			d.Fatalf(e.t, "%s: want no node or two (from, to)", d.Cmd)
		}
		max := 0
		if v, ok := args["n"]; ok {
			max, _ = strconv.Atoi(v)
		}
		ms := e.h.take(from, to, max)
		if len(ms) == 0 {
			out = append(out, "nothing to "+d.Cmd)
		}
		for _, m := range ms {
			if d.Cmd == "deliver" {
				e.h.deliver(m, args["answer"] == "lost")
			} else {
				e.h.drop(m, errDropped)
			}
			e.h.quiesce(e.t)
		}
	case "crash":
		e.need(pos, 1, d)
		out = append(out, e.crash(pos[0]))
	case "restart":
		e.need(pos, 1, d)
		out = append(out, e.restart(pos[0]))
	case "tick":
		e.need(pos, 1, d)
		dur, err := time.ParseDuration(pos[0])
		if err != nil {
			d.Fatalf(e.t, "tick: %v", err)
		}
		now := e.clock.advance(dur)
		e.h.mu.Lock()
		e.h.eventf("now +%s", now.Sub(harnessEpoch))
		e.h.mu.Unlock()
		nodes := pos[1:]
		if len(nodes) == 0 {
			nodes = e.order
		}
		for _, name := range nodes {
			if e.h.nodes[name].cur == nil {
				continue
			}
			e.op(name, name+" timers", func(n *Node) string { harnessTick(n); return "done" })
		}
	case "status", "print":
		nodes := pos
		if len(nodes) == 0 {
			nodes = e.order
		}
		for _, name := range nodes {
			out = append(out, e.status(name))
		}
	case "queue":
		e.h.mu.Lock()
		for _, m := range e.h.queue {
			out = append(out, m.desc)
		}
		e.h.mu.Unlock()
		if len(out) == 0 {
			out = append(out, "empty")
		}
	default:
		d.Fatalf(e.t, "unknown command %q", d.Cmd)
	}
	out = append(e.h.flush(), out...)
	return strings.Join(out, "\n") + "\n"
}

func (e *henv) need(pos []string, n int, d *datadriven.TestData) {
	if len(pos) < n {
		d.Fatalf(e.t, "%s: want %d arguments, got %v", d.Cmd, n, pos)
	}
}

// op runs f on node's current instance in a tracked goroutine and waits
// for the step to settle; the line "label: result" is printed when f
// returns, in this command's output or a later one.
func (e *henv) op(node, label string, f func(n *Node) string) {
	hn := e.node(node)
	inst := hn.cur
	if inst == nil {
		e.t.Fatalf("%s: node %s is crashed", label, node)
	}
	e.h.goTracked(func() {
		res := f(inst.n)
		e.h.mu.Lock()
		if inst.dead {
			e.h.eventf("%s: lost in the crash", label)
		} else {
			e.h.eventf("%s: %s", label, res)
		}
		e.h.mu.Unlock()
	})
	e.h.quiesce(e.t)
}

// result prints an operation's outcome: ok's text, or the error's code.
func result(err error, ok string) string {
	if err == nil {
		return ok
	}
	var rr *RemoteRefusal
	if errors.As(err, &rr) {
		return "refused by the counterparty: " + rr.Code
	}
	// The code the API would answer with.
	return "error " + api.ErrorFor(err).Code
}

func (e *henv) node(name string) *hnode {
	hn := e.h.nodes[name]
	if hn == nil {
		e.t.Fatalf("no node %q", name)
	}
	return hn
}

// agentRef splits node/name.
func (e *henv) agentRef(s string) (node, name string) {
	node, name, ok := strings.Cut(s, "/")
	if !ok {
		e.t.Fatalf("agent %q: want node/name", s)
	}
	return node, name
}

func (e *henv) agentID(s string) string {
	node, name := e.agentRef(s)
	return protocol.AgentID{Org: e.node(node).peer.String(), Name: name}.String()
}

// ref resolves an alias (s1, c1) to its id.
func (e *henv) ref(alias string) string {
	id, ok := e.h.alias.id(alias)
	if !ok {
		e.t.Fatalf("unknown alias %q", alias)
	}
	return id
}

// addNode writes a home on the real disk (identity key and admin token,
// derived from the name so every run has the same ids) and starts the node
// on a fresh crashable in-memory filesystem.
func (e *henv) addNode(name string) string {
	if e.h.nodes[name] != nil {
		e.t.Fatalf("node %s exists", name)
	}
	home := filepath.Join(e.dir, name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		e.t.Fatal(err)
	}
	seed := sha256.Sum256([]byte("harness identity " + name))
	key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		e.t.Fatal(err)
	}
	raw, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		e.t.Fatal(err)
	}
	tok := sha256.Sum256([]byte("harness admin " + name))
	if err := os.WriteFile(filepath.Join(home, IdentityFile), raw, 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, AdminTokenFile), []byte(hex.EncodeToString(tok[:])+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	pid, err := peer.IDFromPrivateKey(key)
	if err != nil {
		e.t.Fatal(err)
	}
	hn := &hnode{name: name, home: home, peer: pid, fs: vfs.NewCrashableMem()}
	e.h.mu.Lock()
	e.h.nodes[name] = hn
	e.h.byPeer[pid] = name
	e.h.mu.Unlock()
	e.order = append(e.order, name)
	return e.start(hn)
}

// start runs a new instance of hn on its filesystem.
func (e *henv) start(hn *hnode) string {
	inst := &hinst{name: hn.name}
	cfg := DefaultConfig(hn.name)
	cfg.Home = hn.home
	opts := []Option{
		WithFS(hn.fs), WithClock(e.clock.now), WithoutAPI(),
		WithRand(newHrand(fmt.Sprintf("harness rand %s %d", hn.name, hn.gen))),
		harnessOptions(htransport{h: e.h, inst: inst}, e.h.spawnHeld),
	}
	if os.Getenv("HARNESS_LOG") != "" {
		opts = append(opts, WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", hn.name)))
	}
	hn.gen++
	n, err := New(cfg, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		return fmt.Sprintf("%s: start: %v", hn.name, err)
	}
	if n.Host() != nil {
		e.t.Fatalf("%s: a node given a transport started a libp2p host", hn.name)
	}
	inst.n = n
	e.h.mu.Lock()
	hn.cur = inst
	e.h.mu.Unlock()
	return fmt.Sprintf("%s started: ledger %d entries", hn.name, n.Ledger().Size())
}

// crash stops name's node as if killed: its filesystem keeps only what was
// synced; requests in flight to or from it fail (their senders see a
// transport error); its unfinished operations are lost.
func (e *henv) crash(name string) string {
	hn := e.node(name)
	inst := hn.cur
	if inst == nil {
		e.t.Fatalf("crash: %s is not running", name)
	}
	// The image first: nothing the dying node does after this counts.
	image := hn.fs.CrashClone(vfs.CrashCloneCfg{})
	size := inst.n.Ledger().Size()
	e.h.mu.Lock()
	inst.dead = true
	hn.cur = nil
	var lost []*hmsg
	rest := e.h.queue[:0:0]
	for _, m := range e.h.queue {
		if m.from == name || m.to == name {
			lost = append(lost, m)
		} else {
			rest = append(rest, m)
		}
	}
	e.h.queue = rest
	for _, m := range lost {
		e.h.eventf("%s: lost in the crash", m.desc)
		e.h.wake(m, hreply{err: errCrashed})
	}
	e.h.mu.Unlock()
	e.h.quiesce(e.t)
	inst.n.Close()
	hn.fs = image
	return fmt.Sprintf("%s crashed (ledger held %d entries)", name, size)
}

func (e *henv) restart(name string) string {
	hn := e.node(name)
	if hn.cur != nil {
		e.t.Fatalf("restart: %s is running", name)
	}
	out := e.start(hn)
	e.h.quiesce(e.t)
	return out + "\n" + e.status(name)
}

// status prints a node's sessions and commitments, in alias order.
func (e *henv) status(name string) string {
	hn := e.node(name)
	if hn.cur == nil {
		return name + ": crashed"
	}
	n := hn.cur.n
	var lines []string
	type row struct{ alias, text string }
	var rows []row
	ss := harnessSessions(n)
	sort.Slice(ss, func(i, j int) bool { return ss[i].id < ss[j].id })
	for _, s := range ss {
		t := fmt.Sprintf("%s %s, %d messages", e.h.alias.name("s", s.id), s.state, s.messages)
		if s.pending != nil {
			t += fmt.Sprintf(", pending %s #%d", s.pending.Performative, s.pending.SequenceNumber)
		}
		if s.ended != "" {
			t += ", ended: " + s.ended
		}
		rows = append(rows, row{e.h.alias.name("s", s.id), t})
	}
	cs := harnessCommitments(n)
	sort.Slice(cs, func(i, j int) bool { return cs[i].id < cs[j].id })
	for _, c := range cs {
		rc := "receipts:"
		if c.ours {
			rc += " ours"
			if !c.oursRecorded {
				rc += " (unrecorded)"
			}
		}
		if c.theirs {
			rc += " theirs"
		}
		t := fmt.Sprintf("%s %s, %s, %d actions", e.h.alias.name("c", c.id), c.state, rc, c.actions)
		if c.pendingAction {
			t += ", action pending"
		}
		rows = append(rows, row{"~" + e.h.alias.name("c", c.id), t})
	}
	for _, d := range harnessDisputes(n) {
		t := fmt.Sprintf("%s %s on %s, %d steps", e.h.alias.name("d", d.id), d.state, e.h.alias.name("c", d.commitment), d.steps)
		if d.pending {
			t += ", pending"
		}
		rows = append(rows, row{"~~" + e.h.alias.name("d", d.id), t})
	}
	sort.SliceStable(rows, func(i, j int) bool { return aliasLess(rows[i].alias, rows[j].alias) })
	lines = append(lines, fmt.Sprintf("%s: ledger %d entries", name, n.Ledger().Size()))
	for _, r := range rows {
		lines = append(lines, "  "+r.text)
	}
	return strings.Join(lines, "\n")
}

// aliasLess orders s2 before s10 (sessions first, then commitments, "~").
func aliasLess(a, b string) bool {
	if a[0] != b[0] {
		return a[0] < b[0]
	}
	i, _ := strconv.Atoi(strings.TrimLeft(a, "~sc"))
	j, _ := strconv.Atoi(strings.TrimLeft(b, "~sc"))
	return i < j
}
