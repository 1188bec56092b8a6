// Command buyer is an example agent written with the Go SDK (node/client)
// alone: it buys a quantity of a resource from one vendor agent, on any
// node of the network, without paying more than its budget per unit.
//
//	buyer -api http://127.0.0.1:41234 -token $BUYER_TOKEN \
//	    -vendor agent://12D3KooW.../vendor -open 2.40 -budget 2.60
//
// It opens a session with the vendor through its own node, PROPOSEs at the
// opening price, and then follows its event stream: a counter-offer within
// budget is ACCEPTed; one above it is answered with a new PROPOSE halfway
// between the two prices, capped at the budget; when even the budget is
// refused it REJECTs and fails. Once the commitment is ACTIVE it prints
// "deal <commitmentId> <unitPrice>" on stdout and exits 0.
package main

import (
	"context"
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
		fmt.Fprintln(os.Stderr, "buyer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("buyer", flag.ContinueOnError)
	apiURL := fs.String("api", os.Getenv("ASP_API"), "the node's API base URL (default $ASP_API)")
	token := fs.String("token", os.Getenv("ASP_TOKEN"), "the agent's bearer token (default $ASP_TOKEN)")
	vendor := fs.String("vendor", "", "the vendor's agent id")
	open := fs.String("open", "2.40", "opening unit price")
	budget := fs.String("budget", "2.60", "highest unit price to pay")
	resource := fs.String("resource", "gpu-hours", "what to buy")
	quantity := fs.String("quantity", "1000", "how much")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *apiURL == "" || *token == "" || *vendor == "" {
		return errors.New("-api, -token and -vendor are required")
	}
	limit, ok1 := new(big.Rat).SetString(*budget)
	offer, ok2 := new(big.Rat).SetString(*open)
	if !ok1 || !ok2 || offer.Cmp(limit) > 0 {
		return errors.New("-open and -budget must be decimals, -open at most -budget")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	c := client.New(*apiURL, *token)
	// Subscribe before the first move, so that no answer comes before the
	// stream is there.
	events := c.Events(ctx, client.EventsOptions{})
	defer events.Close()
	if err := events.Connect(); err != nil {
		return err
	}
	s, err := c.OpenSession(ctx, *vendor)
	if err != nil {
		return err
	}
	terms := client.Terms{Resource: *resource, Quantity: *quantity, Unit: "hour", Currency: "USD",
		DeliverBy: time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 1, 0).Format(client.TimeLayout)}
	propose := func(price *big.Rat) error {
		terms.UnitPrice = price.FloatString(2)
		fmt.Fprintf(os.Stderr, "buyer: PROPOSE %s\n", terms.UnitPrice)
		_, err := retry(ctx, func() error { _, err := c.Propose(ctx, s.SessionID, terms); return err })
		return err
	}
	if err := propose(offer); err != nil {
		return err
	}

	// seen keeps a message from being answered twice when a gap makes the
	// transcript be read again.
	seen := map[string]bool{}
	answer := func(m client.Message) error {
		if m.SessionID != s.SessionID || m.Sender != *vendor || seen[m.MessageID] {
			return nil
		}
		seen[m.MessageID] = true
		switch m.Performative {
		case "COUNTER", "PROPOSE":
			t, ok := m.Terms()
			price, ok2 := new(big.Rat).SetString(t.UnitPrice)
			if !ok || !ok2 {
				return fmt.Errorf("offer %s without a unit price", m.MessageID)
			}
			fmt.Fprintf(os.Stderr, "buyer: vendor asks %s\n", t.UnitPrice)
			if price.Cmp(limit) <= 0 {
				fmt.Fprintf(os.Stderr, "buyer: ACCEPT %s\n", t.UnitPrice)
				_, err := retry(ctx, func() error { _, err := c.Accept(ctx, s.SessionID, m.MessageID); return err })
				return err
			}
			if offer.Cmp(limit) == 0 {
				_, err := retry(ctx, func() error {
					_, err := c.Reject(ctx, s.SessionID, m.MessageID, "over budget")
					return err
				})
				return errors.Join(fmt.Errorf("vendor asks %s, over the budget %s", t.UnitPrice, *budget), err)
			}
			mid := new(big.Rat).Add(offer, price)
			offer = minRat(mid.Quo(mid, big.NewRat(2, 1)), limit)
			return propose(offer)
		case "REJECT", "WITHDRAW", "CLOSE":
			return fmt.Errorf("vendor ended the negotiation (%s)", m.Performative)
		}
		return nil
	}

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
				return err
			}
		case "commitment":
			var d struct{ CommitmentID, State, SessionID string }
			if err := ev.Decode(&d); err != nil {
				return err
			}
			if d.SessionID == s.SessionID && d.State == "ACTIVE" {
				return printDeal(ctx, c, d.CommitmentID)
			}
		case "gap":
			// Some events are lost: the transcript says what happened.
			info, err := c.Session(ctx, s.SessionID)
			if err != nil {
				return err
			}
			if info.CommitmentID != "" {
				cm, err := c.Commitment(ctx, info.CommitmentID)
				if err == nil && cm.State == "ACTIVE" {
					return printDeal(ctx, c, cm.CommitmentID)
				}
			}
			if n := len(info.Messages); n > 0 {
				var m client.Message
				if err := jsonDecode(info.Messages[n-1], &m); err == nil {
					if err := answer(m); err != nil {
						return err
					}
				}
			}
		}
	}
}
