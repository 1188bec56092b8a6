package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
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
	var upstream atomic.Pointer[url.URL]
	upstream.Store(target)
	rp := httputil.NewSingleHostReverseProxy(target)
	director := rp.Director
	rp.Director = func(r *http.Request) {
		director(r)
		r.URL.Host = upstream.Load().Host // the node's address after a restart
	}
	proxy := httptest.NewServer(rp)
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

	// The node restarts: it holds none of its earlier events, and the
	// stream says so before any event of the new run.
	net.Nodes[0].Restart()
	restarted, err := url.Parse(net.Nodes[0].APIURL())
	if err != nil {
		t.Fatal(err)
	}
	upstream.Store(restarted)
	proxy.CloseClientConnections()
	for {
		last := stream.LastEventID() // an event read before the restart may still come first
		ev, err := stream.Next()
		if err != nil {
			t.Fatal(err)
		}
		if g, ok := ev.Gap(); ok {
			if strconv.FormatUint(g.After, 10) != last || g.Oldest <= g.After {
				t.Fatalf("gap %+v after a restart, want one after %s", g, last)
			}
			break
		}
		id, err := strconv.ParseUint(ev.ID, 10, 64)
		prev, _ := strconv.ParseUint(last, 10, 64)
		if err != nil || id <= prev {
			t.Fatalf("event %+v before the gap, after %s", ev, last)
		}
	}
}
