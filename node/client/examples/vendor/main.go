// Command vendor is an example agent written with the Go SDK (node/client)
// alone: it sells to any buyer that negotiates with it, never below its
// floor price per unit.
//
//	vendor -api http://127.0.0.1:41235 -token $VENDOR_TOKEN -ask 2.80 -floor 2.50
//
// It follows its event stream through its own node. An offer at or above
// the floor is ACCEPTed; one below it is COUNTERed, first at the asking
// price, then halfway between its last ask and the offer, never below the
// floor. When a commitment becomes ACTIVE it prints "deal <commitmentId>
// <unitPrice>" on stdout; after -deals of them it exits 0. It prints
// "ready" on stdout once its stream is subscribed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"os/signal"
	"time"

	"github.com/aspnode/asp/node/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vendor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vendor", flag.ContinueOnError)
	apiURL := fs.String("api", os.Getenv("ASP_API"), "the node's API base URL (default $ASP_API)")
	token := fs.String("token", os.Getenv("ASP_TOKEN"), "the agent's bearer token (default $ASP_TOKEN)")
	ask := fs.String("ask", "2.80", "first asking unit price")
	floor := fs.String("floor", "2.50", "lowest unit price to accept")
	deals := fs.Int("deals", 0, "exit after this many deals (0: run until interrupted)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *apiURL == "" || *token == "" {
		return errors.New("-api and -token are required")
	}
	lowest, ok1 := new(big.Rat).SetString(*floor)
	first, ok2 := new(big.Rat).SetString(*ask)
	if !ok1 || !ok2 || first.Cmp(lowest) < 0 {
		return errors.New("-ask and -floor must be decimals, -ask at least -floor")
	}

	c := client.New(*apiURL, *token)
	events := c.Events(ctx, client.EventsOptions{})
	defer events.Close()
	if err := events.Connect(); err != nil {
		return err
	}
	fmt.Println("ready")

	mine := map[string]bool{}     // ids of the messages this vendor sent
	asks := map[string]*big.Rat{} // session -> last price asked
	answered := map[string]bool{} // offers answered
	answer := func(m client.Message) error {
		if mine[m.MessageID] || answered[m.MessageID] || (m.Performative != "PROPOSE" && m.Performative != "COUNTER") {
			return nil
		}
		answered[m.MessageID] = true
		t, ok := m.Terms()
		offer, ok2 := new(big.Rat).SetString(t.UnitPrice)
		if !ok || !ok2 {
			return nil // not an offer this vendor understands
		}
		fmt.Fprintf(os.Stderr, "vendor: %s offers %s\n", m.Sender, t.UnitPrice)
		send := func(f func() (string, error)) error {
			id, err := retry(ctx, f)
			if err != nil {
				return err
			}
			mine[id] = true
			return nil
		}
		if offer.Cmp(lowest) >= 0 {
			fmt.Fprintf(os.Stderr, "vendor: ACCEPT %s\n", t.UnitPrice)
			return send(func() (string, error) {
				res, err := c.Accept(ctx, m.SessionID, m.MessageID)
				return res.MessageID, err
			})
		}
		next := first
		if last := asks[m.SessionID]; last != nil {
			mid := new(big.Rat).Add(last, offer)
			next = maxRat(mid.Quo(mid, big.NewRat(2, 1)), lowest)
		}
		asks[m.SessionID] = next
		t.UnitPrice = next.FloatString(2)
		fmt.Fprintf(os.Stderr, "vendor: COUNTER %s\n", t.UnitPrice)
		return send(func() (string, error) {
			res, err := c.Counter(ctx, m.SessionID, m.MessageID, t)
			return res.MessageID, err
		})
	}

	done := 0
	for {
		ev, err := events.Next()
		if err != nil {
			return err
		}
		switch ev.Type {
		case "message":
			m, err := ev.Message()
			if err != nil {
				return err
			}
			if err := answer(m); err != nil {
				fmt.Fprintln(os.Stderr, "vendor:", err) // one failed negotiation does not stop the others
			}
		case "commitment":
			var d struct{ CommitmentID, State, SessionID string }
			if err := ev.Decode(&d); err != nil {
				return err
			}
			if d.State != "ACTIVE" {
				continue
			}
			cm, err := c.Commitment(ctx, d.CommitmentID)
			if err != nil {
				return err
			}
			var t client.Terms
			if err := json.Unmarshal(cm.Terms, &t); err != nil {
				return err
			}
			fmt.Printf("deal %s %s\n", d.CommitmentID, t.UnitPrice)
			if done++; *deals > 0 && done >= *deals {
				return nil
			}
		case "gap":
			// Some events are lost: answer the last offer of every session
			// still in negotiation.
			ss, err := c.Sessions(ctx)
			if err != nil {
				return err
			}
			for _, s := range ss {
				if n := len(s.Messages); n > 0 && s.CommitmentID == "" {
					var m client.Message
					if decode(s.Messages[n-1], &m) == nil {
						if err := answer(m); err != nil {
							fmt.Fprintln(os.Stderr, "vendor:", err)
						}
					}
				}
			}
		}
	}
}

// retry calls f again while the node answers with a retryable error (the
// counterparty's node busy with a move of its own, say), with backoff.
func retry(ctx context.Context, f func() (string, error)) (string, error) {
	wait := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		id, err := f()
		if err == nil || !client.IsRetryable(err) || attempt == 30 {
			return id, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

func maxRat(a, b *big.Rat) *big.Rat {
	if a.Cmp(b) > 0 {
		return a
	}
	return b
}

func decode(raw json.RawMessage, v any) error { return json.Unmarshal(raw, v) }
