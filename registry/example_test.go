package registry_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/aspnode/asp/p2p"
	"github.com/aspnode/asp/registry"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/prometheus/client_golang/prometheus"
)

// How a node wires the registry: one Metrics and one Validator shared by
// the DHT and the Registry, the p2p host serving ProtocolID, then Run for
// republishing and cache refresh.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, orgKey, _ := ed25519.GenerateKey(nil)
	lk, _ := crypto.UnmarshalEd25519PrivateKey(orgKey)

	metrics, _ := registry.NewMetrics(prometheus.NewRegistry())
	v := registry.NewValidator(metrics, nil)
	h, err := p2p.New(ctx, p2p.Config{Key: lk, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}},
		p2p.WithValidator(registry.Namespace, v))
	if err != nil {
		panic(err)
	}
	defer h.Close()
	reg, err := registry.New(registry.Config{Host: h.Host(), Wire: h, Routing: h.DHT(), Key: orgKey, Validator: v})
	if err != nil {
		panic(err)
	}
	defer reg.Close()
	go func() { _ = reg.Run(ctx) }()

	agentPub, _, _ := ed25519.GenerateKey(nil)
	card, err := reg.Publish(ctx, registry.Agent{
		Name:         "vendor",
		Description:  "GPU hours",
		Capabilities: []string{"compute.gpu-hours"},
		PublicKey:    agentPub,
	})
	// Alone, the card is served but not yet announced; Run retries.
	fmt.Println(card.Capabilities, err != nil)

	res, _ := reg.Discover(ctx, "compute", 0, 10)
	for _, m := range res.Agents {
		fmt.Println(m.Card.Name, m.Source, m.Trust.Level)
	}
	fmt.Println("partial:", res.Partial)
	// Output:
	// [compute.gpu-hours] true
	// vendor local L0
	// partial: true
}
