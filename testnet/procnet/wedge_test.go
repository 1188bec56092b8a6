package procnet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/testnet/apiclient"
	"github.com/aspnode/asp/testnet/procnet"
	"github.com/aspnode/asp/testnet/scenario"
)

// crashNegotiations is how many negotiations TestCrashWedgesNoSession
// runs: ASP_CRASH_NEGOTIATIONS, 200 by default.
func crashNegotiations(t *testing.T) int {
	t.Helper()
	s := os.Getenv("ASP_CRASH_NEGOTIATIONS")
	if s == "" {
		return 200
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("ASP_CRASH_NEGOTIATIONS=%q: want a positive integer", s)
	}
	return n
}

// TestCrashWedgesNoSession runs many concurrent four-move negotiations
// (PROPOSE, COUNTER, PROPOSE, ACCEPT) through the HTTP API, kills the
// vendor's node with SIGKILL halfway and restarts it while the agents keep
// moving (each move retried until its node holds it). Every negotiation
// must finish with its commitment ACTIVE on both nodes (or its session
// CLOSED or FAILED on both), both nodes must hold the same transcript of
// every session, and both ledgers must verify: no session is wedged.
func TestCrashWedgesNoSession(t *testing.T) {
	total := crashNegotiations(t)
	net := startNet(t, 2)
	n0, n1 := net.Nodes[0], net.Nodes[1]
	budget := 3*time.Minute + time.Duration(total)*300*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget+2*time.Minute)
	defer cancel()
	buyer, vendor := newAgents(t, ctx, net)
	clients := [2]func() *apiclient.Client{
		func() *apiclient.Client { return n0.Client(buyer.Token) },
		func() *apiclient.Client { return n1.Client(vendor.Token) },
	}

	var moves atomic.Int64 // moves acknowledged
	killAt := int64(total * 4 / 2)
	killed := make(chan struct{})
	var killOnce sync.Once
	kill := func() {
		killOnce.Do(func() {
			if err := n1.Kill(); err != nil {
				t.Errorf("kill: %v", err)
			}
			close(killed)
		})
	}
	restarted := make(chan error, 1)
	go func() {
		select {
		case <-killed:
		case <-ctx.Done():
			restarted <- ctx.Err()
			return
		}
		restarted <- n1.Restart(ctx, mustLoopback(t, n0))
	}()

	negCtx, stop := context.WithTimeout(ctx, budget)
	defer stop()
	var (
		mu       sync.Mutex
		sessions []string
		stuck    []string
	)
	// Half of them at a time, so that at the crash sessions are at every
	// stage.
	sem := make(chan struct{}, max(1, min(total/2, 500)))
	var wg sync.WaitGroup
	for i := 0; i < total; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			sid, err := negotiate(negCtx, clients, vendor.ID, func() {
				if moves.Add(1) == killAt {
					kill()
				}
			})
			mu.Lock()
			defer mu.Unlock()
			if sid != "" {
				sessions = append(sessions, sid)
			}
			if err != nil {
				stuck = append(stuck, fmt.Sprintf("negotiation %d (session %s): %v", i, sid, err))
			}
		}()
	}
	wg.Wait()
	kill() // if fewer moves were made than expected
	if err := <-restarted; err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Logf("%d negotiations, %d sessions opened, %d moves acknowledged, %d not finished", total, len(sessions), moves.Load(), len(stuck))
	if len(stuck) > 0 {
		t.Errorf("%d negotiations wedged:\n%s", len(stuck), strings.Join(stuck[:min(len(stuck), 20)], "\n"))
	}

	// Every session: the same transcript on both nodes, and finished.
	var problems []string
	err := scenario.Await(ctx, func() bool {
		problems = problems[:0]
		for _, sid := range sessions {
			var infos [2]api.SessionInfo
			for i, nd := range []*procnet.Node{n0, n1} {
				info, err := nd.Admin().Session(ctx, sid)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s on %s: %v", sid, nd.Name, err))
					break
				}
				infos[i] = info
			}
			if len(problems) > 0 {
				continue
			}
			if !sameMessages(infos[0].Messages, infos[1].Messages) {
				problems = append(problems, fmt.Sprintf("%s: %d messages (%s) on the buyer's node, %d (%s) on the vendor's",
					sid, len(infos[0].Messages), infos[0].State, len(infos[1].Messages), infos[1].State))
				continue
			}
			switch st := infos[0].State; {
			case st == "CLOSED" || st == "FAILED":
				if infos[1].State != st {
					problems = append(problems, fmt.Sprintf("%s: %s on the buyer's node, %s on the vendor's", sid, st, infos[1].State))
				}
			case infos[0].CommitmentID != "":
				for _, nd := range []*procnet.Node{n0, n1} {
					c, err := nd.Admin().Commitment(ctx, infos[0].CommitmentID)
					if err != nil || c.State != "ACTIVE" {
						problems = append(problems, fmt.Sprintf("%s: commitment %s on %s: %s %v", sid, infos[0].CommitmentID, nd.Name, c.State, err))
					}
				}
			default:
				problems = append(problems, fmt.Sprintf("%s: %s with %d messages", sid, st, len(infos[0].Messages)))
			}
		}
		return len(problems) == 0
	})
	if err != nil {
		t.Fatalf("%d sessions not settled: %v:\n%s", len(problems), err, strings.Join(problems[:min(len(problems), 20)], "\n"))
	}
	if err := net.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, nd := range net.Nodes {
		auditVerify(t, nd.Home)
	}
}

func sameMessages(a, b []json.RawMessage) bool {
	return slices.EqualFunc(a, b, func(x, y json.RawMessage) bool { return string(x) == string(y) })
}

// negotiate plays one negotiation between the buyer (clients[0]) and the
// vendor (clients[1]) and returns its session id. Move k (PROPOSE, COUNTER,
// PROPOSE, ACCEPT; COUNTER and ACCEPT name the message they answer) is made
// once its sender's node holds the k+2 messages before it, and retried, whatever the error, until that node holds it:
// a move recorded but not yet acknowledged is resent by the node itself.
// It fails only when ctx ends first.
func negotiate(ctx context.Context, clients [2]func() *apiclient.Client, vendorID string, moved func()) (string, error) {
	var sid string
	for sid == "" {
		s, err := clients[0]().OpenSession(ctx, vendorID)
		if err == nil {
			sid = s.SessionID
			break
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("open: %w", err)
		}
		pause(ctx)
	}
	deliverBy := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 1, 0)
	plan := []struct{ perf, price string }{{"PROPOSE", "2.40"}, {"COUNTER", "2.80"}, {"PROPOSE", "2.55"}, {"ACCEPT", ""}}
	var lastErr error
	for k := 0; k < len(plan); {
		if ctx.Err() != nil {
			return sid, fmt.Errorf("move %d (%s) not made: %v", k, plan[k].perf, lastErr)
		}
		c := clients[k%2]()
		info, err := c.Session(ctx, sid)
		if err != nil {
			lastErr = err
			pause(ctx)
			continue
		}
		if info.State == "CLOSED" || info.State == "FAILED" {
			return sid, nil
		}
		switch n := len(info.Messages); {
		case n >= 3+k:
			k++
			moved()
			continue
		case n < 2+k:
			pause(ctx) // the counterparty's move has not arrived yet
			continue
		}
		req := api.SendMessageRequest{Performative: plan[k].perf}
		if plan[k].price != "" {
			req.Terms = scenario.Terms(plan[k].price, deliverBy)
		}
		if plan[k].perf != "PROPOSE" {
			var last struct {
				MessageID string `json:"messageId"`
			}
			if err := json.Unmarshal(info.Messages[len(info.Messages)-1], &last); err != nil {
				return sid, err
			}
			req.ReferenceID = last.MessageID
		}
		if _, err := c.Send(ctx, sid, req); err != nil {
			lastErr = err
			pause(ctx)
		}
	}
	return sid, nil
}

func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(50 * time.Millisecond):
	}
}
