// Package scenario plays scripted negotiations through nodes' HTTP APIs:
// the seed deal of CONTRACT.md, and the polling helpers its callers need.
// It works the same on in-process and multi-process networks.
package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/protocol"
)

// Agent is an agent created on a node, with its token.
type Agent struct {
	// Role is what the feed calls it ("buyer", "vendor").
	Role string
	// ID is the agent id, agent://<peerId>/<name>.
	ID string
	// Token is the agent's bearer token.
	Token string
	// Client acts as the agent on its node.
	Client *client.Client
	// Admin acts as its node's administrator.
	Admin *client.Client
	// Node names the agent's node (for output).
	Node string
}

// CreateAgent creates an agent for role on the node admin speaks to, named
// role (or role-2, role-3, ... when the node already has one by that name,
// as in a reused testnet home).
func CreateAgent(ctx context.Context, admin *client.Client, nodeName, role string, caps []string, desc string) (*Agent, error) {
	for i := 1; i <= 100; i++ {
		n := role
		if i > 1 {
			n = fmt.Sprintf("%s-%d", role, i)
		}
		res, err := admin.CreateAgent(ctx, api.CreateAgentRequest{Name: n, Capabilities: caps, Description: desc})
		if client.IsCode(err, api.CodeDuplicate) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create agent %s on %s: %w", n, nodeName, err)
		}
		return &Agent{Role: role, ID: res.AgentID, Token: res.Token, Client: admin.WithToken(res.Token), Admin: admin, Node: nodeName}, nil
	}
	return nil, fmt.Errorf("create agent %s on %s: every name taken", role, nodeName)
}

// Terms returns the seed deal's terms at a unit price: 1000 GPU hours,
// delivered by deliverBy.
func Terms(unitPrice string, deliverBy time.Time) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"resource":   "gpu-hours",
		"quantity":   "1000",
		"unit":       "hour",
		"unitPrice":  unitPrice,
		"currency":   "USD",
		"deliverBy":  protocol.FormatTime(deliverBy),
		"penalty":    "5% per day late",
		"attributes": map[string]string{},
	})
	return b
}

// Move is one message of a negotiation, as reported to its sender.
type Move struct {
	From, To     *Agent
	Performative string
	UnitPrice    string // for offers
	Result       api.SendMessageResult
	At           time.Duration // since the session opened
}

// Deal is a played seed deal.
type Deal struct {
	Buyer, Vendor *Agent
	SessionID     string
	Moves         []Move
	CommitmentID  string
	// Buyer's and vendor's nodes' views of the commitment, once ACTIVE on both.
	BuyerView, VendorView api.CommitmentInfo
	// Elapsed is from the first PROPOSE to ACTIVE on both nodes.
	Elapsed time.Duration
}

// Feed receives the moves of a negotiation as they happen.
type Feed func(m Move)

// PlaySeedDeal plays the seed scenario of CONTRACT.md between buyer and
// vendor (agents on two nodes) over the HTTP API: open a session, PROPOSE
// 1000 GPU hours at 2.40 USD/h, COUNTER 2.80, PROPOSE 2.55, ACCEPT; then it
// waits until both nodes show the commitment ACTIVE. feed (optional) sees
// every move once its sender's node acknowledged it.
func PlaySeedDeal(ctx context.Context, buyer, vendor *Agent, feed Feed) (*Deal, error) {
	deliverBy := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 1, 0)
	d := &Deal{Buyer: buyer, Vendor: vendor}
	s, err := buyer.Client.OpenSession(ctx, vendor.ID)
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	d.SessionID = s.SessionID
	start := time.Now()

	// send sends one move and waits until the counterparty's node holds
	// it, so that the next move is legal there.
	var last string // messageId of the last move
	send := func(from, to *Agent, perf, price string) (Move, error) {
		req := api.SendMessageRequest{Performative: perf}
		if perf != "PROPOSE" {
			req.ReferenceID = last // the offer countered or accepted
		}
		if price != "" {
			req.Terms = Terms(price, deliverBy)
		}
		res, err := from.Client.Send(ctx, d.SessionID, req)
		if err != nil {
			return Move{}, fmt.Errorf("%s %s: %w", from.Role, perf, err)
		}
		last = res.MessageID
		m := Move{From: from, To: to, Performative: perf, UnitPrice: price, Result: res, At: time.Since(start)}
		d.Moves = append(d.Moves, m)
		if feed != nil {
			feed(m)
		}
		if perf == "ACCEPT" {
			return m, nil
		}
		mine, err := from.Client.Session(ctx, d.SessionID)
		if err != nil {
			return m, err
		}
		return m, AwaitMessages(ctx, to.Client, d.SessionID, len(mine.Messages))
	}
	if _, err := send(buyer, vendor, "PROPOSE", "2.40"); err != nil {
		return d, err
	}
	if _, err := send(vendor, buyer, "COUNTER", "2.80"); err != nil {
		return d, err
	}
	if _, err := send(buyer, vendor, "PROPOSE", "2.55"); err != nil {
		return d, err
	}
	m, err := send(vendor, buyer, "ACCEPT", "")
	if err != nil {
		return d, err
	}
	d.CommitmentID = m.Result.CommitmentID
	if d.CommitmentID == "" {
		return d, fmt.Errorf("ACCEPT answered without a commitmentId (state %s)", m.Result.State)
	}
	if d.BuyerView, err = AwaitCommitment(ctx, buyer.Admin, d.CommitmentID, "ACTIVE"); err != nil {
		return d, fmt.Errorf("%s: %w", buyer.Node, err)
	}
	if d.VendorView, err = AwaitCommitment(ctx, vendor.Admin, d.CommitmentID, "ACTIVE"); err != nil {
		return d, fmt.Errorf("%s: %w", vendor.Node, err)
	}
	d.Elapsed = time.Since(start)
	return d, nil
}

// AwaitMessages polls GET /v1/sessions/{id} through c until the session
// holds at least n messages, or ctx ends.
func AwaitMessages(ctx context.Context, c *client.Client, sessionID string, n int) error {
	var last error
	err := Await(ctx, func() bool {
		s, err := c.Session(ctx, sessionID)
		if err != nil {
			last = err
			return false
		}
		last = fmt.Errorf("session %s has %d messages, want %d", sessionID, len(s.Messages), n)
		return len(s.Messages) >= n
	})
	if err != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return nil
}

// AwaitCommitment polls GET /v1/commitments/{id} through c until the
// commitment is in state, or ctx ends.
func AwaitCommitment(ctx context.Context, c *client.Client, id, state string) (api.CommitmentInfo, error) {
	var info api.CommitmentInfo
	var last error
	err := Await(ctx, func() bool {
		var err error
		info, err = c.Commitment(ctx, id)
		if err != nil {
			last = err
			return false
		}
		last = fmt.Errorf("commitment %s is %s, want %s", id, info.State, state)
		return strings.EqualFold(info.State, state)
	})
	if err != nil {
		return info, fmt.Errorf("%w (last: %v)", err, last)
	}
	return info, nil
}

// Await calls cond every 20 ms until it returns true or ctx ends; then it
// returns ctx's error. Give ctx a deadline.
func Await(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// PrintMove writes one line of the live feed.
func PrintMove(w io.Writer, m Move) {
	what := ""
	if m.UnitPrice != "" {
		what = fmt.Sprintf("1000 gpu-hours at %s USD/hour", m.UnitPrice)
	}
	if m.Result.CommitmentID != "" {
		what = "→ commitment " + m.Result.CommitmentID
	}
	fmt.Fprintf(w, "  %7.3fs  %-6s → %-6s  %-8s %s\n", m.At.Seconds(), m.From.Role, m.To.Role, m.Performative, what)
}
