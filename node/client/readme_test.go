package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/testnet"
)

// readmeBuyer is the README's SDK example ("Connect your agent"), as
// written there: TestREADMEConnect checks the text and runs it.
func readmeBuyer(ctx context.Context, apiURL, token, vendorID string) error {
	// README begin
	buyer := client.New(apiURL, token) // the agent's own node, the agent's token
	events := buyer.Events(ctx, client.EventsOptions{})
	defer events.Close()
	if err := events.Connect(); err != nil { // subscribed before the first move
		return err
	}
	s, err := buyer.OpenSession(ctx, vendorID)
	if err != nil {
		return err
	}
	terms := client.Terms{Resource: "gpu-hours", Quantity: "1000", Unit: "hour", UnitPrice: "2.40", Currency: "USD"}
	if _, err := buyer.Propose(ctx, s.SessionID, terms); err != nil {
		return err
	}
	for {
		ev, err := events.Next() // reconnects by itself, resuming where it broke off
		if err != nil {
			return err
		}
		m, err := ev.Message()
		if err != nil || m.Sender != vendorID || m.Performative != "COUNTER" {
			continue // another event, or the buyer's own message
		}
		counter, _ := m.Terms()
		res, err := buyer.Accept(ctx, s.SessionID, m.MessageID)
		for errors.Is(err, client.ErrBusy) { // the vendor's node is still busy with its move
			time.Sleep(20 * time.Millisecond)
			res, err = buyer.Accept(ctx, s.SessionID, m.MessageID)
		}
		if err != nil {
			return err
		}
		fmt.Println("commitment", res.CommitmentID, "at", counter.UnitPrice)
		return nil
	}
	// README end
}

// The README's SDK example is the code above, and closes a deal between two
// real nodes against a vendor that counters at 2.80.
func TestREADMEConnect(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\t// README begin\n(.*?)\t// README end\n").FindSubmatch(src)
	if m == nil {
		t.Fatal("no README markers in readme_test.go")
	}
	var want strings.Builder
	for _, l := range strings.SplitAfter(string(m[1]), "\n") {
		want.WriteString(strings.TrimPrefix(l, "\t"))
	}
	sec := string(readme)
	if i := strings.Index(sec, "## Connect your agent"); i >= 0 {
		sec = sec[i:]
	} else {
		t.Fatal("README has no section Connect your agent")
	}
	if !strings.Contains(sec, "```go\n"+want.String()+"```") {
		t.Fatalf("README's Go example differs from readmeBuyer; it should read:\n%s", want.String())
	}
	if testing.Short() {
		t.Skip("starts two real nodes")
	}

	net := testnet.New(t, 2)
	buyer := net.CreateAgent(0, "buyer")
	vendor := net.CreateAgent(1, "vendor", "compute.gpu-hours")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vendorReady := make(chan error, 1)
	go func() {
		vendorReady <- counterOnce(ctx, vendor.Client, "2.80", func() { vendorReady <- nil })
	}()
	if err := <-vendorReady; err != nil {
		t.Fatal(err)
	}
	bought := make(chan error, 1)
	go func() { bought <- readmeBuyer(ctx, net.Nodes[0].APIURL(), buyer.Token, vendor.ID) }()
	for range 2 {
		select {
		case err := <-vendorReady:
			if err != nil {
				t.Fatalf("vendor: %v", err)
			}
		case err := <-bought:
			if err != nil {
				t.Fatalf("buyer: %v", err)
			}
		}
	}
	cs, err := buyer.Client.Commitments(ctx)
	if err != nil || len(cs) != 1 || !strings.Contains(string(cs[0].Terms), `"unitPrice":"2.80"`) {
		t.Fatalf("buyer's commitments %+v, %v", cs, err)
	}
}

// counterOnce follows c's events, calls ready once subscribed, and answers
// the first offer it gets with a COUNTER at price.
func counterOnce(ctx context.Context, c *client.Client, price string, ready func()) error {
	events := c.Events(ctx, client.EventsOptions{})
	defer events.Close()
	if err := events.Connect(); err != nil {
		return err
	}
	ready()
	for {
		ev, err := events.Next()
		if err != nil {
			return err
		}
		m, err := ev.Message()
		if err != nil || m.Performative != "PROPOSE" {
			continue
		}
		t, ok := m.Terms()
		if !ok {
			continue // the invitation that opens the session
		}
		t.UnitPrice = price
		_, err = c.Counter(ctx, m.SessionID, m.MessageID, t)
		for errors.Is(err, client.ErrBusy) {
			time.Sleep(20 * time.Millisecond)
			_, err = c.Counter(ctx, m.SessionID, m.MessageID, t)
		}
		return err
	}
}
