package procnet_test

import (
	"context"
	"encoding/json"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/testnet/scenario"
)

// TestDiscovery runs three node processes: agents published on two of them
// are found by capability (and by prefix) from the third, over the DHT, and
// their signed cards are fetched from their organisations.
func TestDiscovery(t *testing.T) {
	net := startNet(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n0, n1, n2 := net.Nodes[0], net.Nodes[1], net.Nodes[2]
	gpu, err := scenario.CreateAgent(ctx, n1.Admin(), n1.Name, "gpu-vendor", []string{"compute.gpu-hours"}, "sells GPU time")
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := scenario.CreateAgent(ctx, n2.Admin(), n2.Name, "cpu-vendor", []string{"compute.cpu-hours", "storage.object"}, "sells CPU time")
	if err != nil {
		t.Fatal(err)
	}
	discover := func(capability string) []string {
		var res api.DiscoverResult
		if err := n0.Admin().Do(ctx, "GET", "/v1/discover?capability="+url.QueryEscape(capability)+"&limit=10", nil, &res); err != nil {
			t.Fatalf("discover %s: %v", capability, err)
		}
		var ids []string
		for _, a := range res.Agents {
			ids = append(ids, a.AgentID)
		}
		sort.Strings(ids)
		return ids
	}
	want := []string{cpu.ID, gpu.ID}
	sort.Strings(want)
	err = scenario.Await(ctx, func() bool {
		got := discover("compute")
		return len(got) == 2 && got[0] == want[0] && got[1] == want[1]
	})
	if err != nil {
		t.Fatalf("discover compute from node-0: %v; last answer %v, want %v", err, discover("compute"), want)
	}
	if got := discover("compute.gpu-hours"); len(got) != 1 || got[0] != gpu.ID {
		t.Fatalf("discover compute.gpu-hours: %v, want [%s]", got, gpu.ID)
	}
	if got := discover("storage"); len(got) != 1 || got[0] != cpu.ID {
		t.Fatalf("discover storage: %v, want [%s]", got, cpu.ID)
	}
	if got := discover("weather.forecast"); len(got) != 0 {
		t.Fatalf("discover of an unknown capability: %v, want none", got)
	}
	// The card, fetched through node-0, is the one node-1 signed.
	var card struct {
		AgentID string `json:"agentId"`
		Org     string `json:"org"`
	}
	var raw json.RawMessage
	if err := n0.Admin().Do(ctx, "GET", "/v1/agents/"+url.PathEscape(gpu.ID)+"/card", nil, &raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &card); err != nil || card.AgentID != gpu.ID || card.Org != n1.PeerID() {
		t.Fatalf("card through node-0: %s (%v)", raw, err)
	}
}
