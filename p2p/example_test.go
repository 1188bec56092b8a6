package p2p_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/aspnode/asp/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Two hosts on loopback: one serves the session protocol, the other asks.
func ExampleHost_Request() {
	ctx := context.Background()
	home, _ := os.MkdirTemp("", "asp-example-")
	defer os.RemoveAll(home)

	start := func(name string) *p2p.Host {
		key, err := p2p.LoadOrCreateKey(filepath.Join(home, name, "identity.key"))
		if err != nil {
			log.Fatal(err)
		}
		h, err := p2p.New(ctx, p2p.Config{Key: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			log.Fatal(err)
		}
		return h
	}
	vendor, buyer := start("vendor"), start("buyer")
	defer vendor.Close()
	defer buyer.Close()

	vendor.Handle(p2p.SessionProtocol, func(_ context.Context, _ peer.ID, req []byte) ([]byte, error) {
		if string(req) == "PROPOSE 2.40" {
			return []byte("COUNTER 2.80"), nil
		}
		return nil, &p2p.RemoteError{Code: "invalid_transition", Message: "expected a proposal"}
	})
	if err := buyer.Connect(ctx, vendor.AddrInfo()); err != nil {
		log.Fatal(err)
	}
	resp, err := buyer.Request(ctx, vendor.ID(), p2p.SessionProtocol, []byte("PROPOSE 2.40"))
	fmt.Println(string(resp), err)
	_, err = buyer.Request(ctx, vendor.ID(), p2p.SessionProtocol, []byte("ACCEPT"))
	fmt.Println(err)
	// Output:
	// COUNTER 2.80 <nil>
	// remote error: invalid_transition: expected a proposal
}
