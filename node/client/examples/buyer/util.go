package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/aspnode/asp/node/client"
)

// retry calls f again while the node answers with a retryable error (the
// counterparty's node busy with a move of its own, say), with backoff.
func retry(ctx context.Context, f func() error) (int, error) {
	wait := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !client.IsRetryable(err) || attempt == 30 {
			return attempt, err
		}
		select {
		case <-ctx.Done():
			return attempt, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

func minRat(a, b *big.Rat) *big.Rat {
	if a.Cmp(b) < 0 {
		return a
	}
	return b
}

func jsonDecode(raw json.RawMessage, v any) error { return json.Unmarshal(raw, v) }

// printDeal prints the commitment's id and agreed unit price on stdout.
func printDeal(ctx context.Context, c *client.Client, id string) error {
	cm, err := c.Commitment(ctx, id)
	if err != nil {
		return err
	}
	var t client.Terms
	if err := json.Unmarshal(cm.Terms, &t); err != nil {
		return err
	}
	fmt.Printf("deal %s %s\n", cm.CommitmentID, t.UnitPrice)
	return nil
}
