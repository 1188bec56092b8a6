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
