package client_test

import (
	"context"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/testnet"
	"github.com/aspnode/asp/testnet/scenario"
)

// The buyer follows its events from a real node through a proxy that cuts
// every connection after each move of the seed deal. The stream resumes by
// itself and returns each of the session's messages exactly once, in the
// transcript's order, then the commitment, with no gap.
func TestEventsResumeRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two real nodes")
	}
	net := testnet.New(t, 2)
	buyer := net.CreateAgent(0, "buyer")
	vendor := net.CreateAgent(1, "vendor", "compute.gpu-hours")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	target, err := url.Parse(net.Nodes[0].APIURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer proxy.Close()
	stream := client.New(proxy.URL, buyer.Token).Events(ctx, client.EventsOptions{MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	defer stream.Close()
	if err := stream.Connect(); err != nil {
		t.Fatal(err)
	}

	cuts := 0
	deal, err := scenario.PlaySeedDeal(ctx, buyer, vendor, func(scenario.Move) {
		proxy.CloseClientConnections()
		cuts++
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := buyer.Client.Session(ctx, deal.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, raw := range info.Messages {
		var m client.Message
		if err := jsonUnmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m.MessageID)
	}

	var got []string
	for {
		ev, err := stream.Next()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if _, gap := ev.Gap(); gap {
			t.Fatalf("gap after %v", got)
		}
		if ev.Type == "message" {
			m, err := ev.Message()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, m.MessageID)
			// Cut again while reading: the rest comes from the replay.
			proxy.CloseClientConnections()
		}
		var c struct{ CommitmentID, State string }
		if ev.Type == "commitment" && ev.Decode(&c) == nil && c.CommitmentID == deal.CommitmentID && c.State == "ACTIVE" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("message events %v\ntranscript     %v", got, want)
	}
	if stream.Connects() < 2 {
		t.Fatalf("%d connections after %d cuts: the test cut nothing", stream.Connects(), cuts)
	}
	t.Logf("%d messages over %d connections", len(got), stream.Connects())
}
