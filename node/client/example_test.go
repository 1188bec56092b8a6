package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
)

// An agent is created with the admin token, then acts with its own token.
// (A program beside a running node would start from
// client.FromHome("/path/to/home") instead of a test server.)
func Example() {
	srv := httptest.NewServer(api.New(newBackend(), api.WithLogger(quiet)))
	defer srv.Close()
	ctx := context.Background()

	admin := client.New(srv.URL, adminToken)
	agent, err := admin.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer", Capabilities: []string{"compute.gpu-hours"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("agent", agent.AgentID)

	buyer := admin.WithToken(agent.Token)
	s, err := buyer.OpenSession(ctx, "agent://12D3KooWOther/vendor")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("session", s.SessionID, s.State)

	// Accepting before any offer is an illegal move: the node answers 409
	// invalid_transition, as an *api.Error.
	_, err = buyer.Send(ctx, s.SessionID, api.SendMessageRequest{Performative: "ACCEPT"})
	var e *api.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Code, client.IsCode(err, api.CodeInvalidTransition))
	}
	// Output:
	// agent agent://12D3KooWFake/buyer
	// session ses_1 OPEN
	// 409 invalid_transition true
}

// An agent follows its events. The stream reconnects by itself when the
// connection breaks, resuming after the last event it returned; Close (or
// the context) ends it.
func ExampleClient_Events() {
	b := newBackend()
	srv := httptest.NewServer(api.New(b, api.WithLogger(quiet)))
	defer srv.Close()
	ctx := context.Background()
	admin := client.New(srv.URL, adminToken)
	agent, _ := admin.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer"})

	events := admin.WithToken(agent.Token).Events(ctx, client.EventsOptions{})
	defer events.Close()
	if err := events.Connect(); err != nil { // subscribed from here on
		fmt.Println(err)
		return
	}
	b.publish(1)
	b.closeSubs() // the node ends the stream: a slow reader, a proxy...
	b.publish(2)  // ...and an event comes meanwhile
	for range 2 {
		ev, err := events.Next()
		if err != nil {
			fmt.Println(err)
			return
		}
		if g, ok := ev.Gap(); ok {
			fmt.Println("events lost between", g.After, "and", g.Oldest, ": read the sessions again")
			continue
		}
		fmt.Println(ev.ID, ev.Type, string(ev.Data))
	}
	// Output:
	// 1 commitment {"n":1}
	// 2 commitment {"n":2}
}

// AllEntries reads the ledger page after page (admin token).
func ExampleClient_AllEntries() {
	srv := httptest.NewServer(api.New(newBackend(), api.WithLogger(quiet)))
	defer srv.Close()
	admin := client.New(srv.URL, adminToken)
	for e, err := range admin.AllEntries(context.Background(), 0, 2) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Print(e.Index, " ", e.Kind, "; ")
	}
	fmt.Println()
	// Output:
	// 0 agent; 1 agent; 2 agent; 3 agent; 4 agent;
}

// Errors carry the API's code and whether trying again may help; the
// sentinels test the code.
func ExampleError() {
	srv := httptest.NewServer(api.New(newBackend(), api.WithLogger(quiet)))
	defer srv.Close()
	ctx := context.Background()
	admin := client.New(srv.URL, adminToken)
	_, err := admin.Session(ctx, "ses_404")
	fmt.Println(errors.Is(err, client.ErrNotFound), client.IsRetryable(err))
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Code)
	}
	// Output:
	// true false
	// 404 not_found
}

// A program beside a running node starts from its home directory, which
// holds the API's address and the admin token.
func ExampleFromHome() {
	admin, err := client.FromHome("/var/lib/asp")
	if err != nil {
		fmt.Println(err) // errors.Is(err, client.ErrNotRunning) when the node is down
		return
	}
	info, err := admin.Node(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(info.PeerID, info.Org)
}
