package trust_test

import (
	"fmt"
	"time"

	"github.com/aspnode/asp/registry/trust"
)

// A node whose buyer completed ten commitments with a vendor of another
// organisation, then saw it breach one.
func Example() {
	m, err := trust.New(trust.Config{})
	if err != nil {
		panic(err)
	}
	const (
		us     = "12D3KooWBuyerOrg"
		buyer  = "agent://12D3KooWBuyerOrg/buyer"
		vendor = "agent://12D3KooWVendorOrg/gpu-vendor"
	)
	day := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		m.Add(trust.Evidence{
			Attester: buyer, Subject: vendor, CommitmentID: fmt.Sprintf("cmt_%d", i),
			Outcome: trust.Fulfilled, Time: day, Value: "2550.00",
		})
	}
	x := m.Compute(us, day).Explain(vendor)
	fmt.Println(x.Score, x.Level, x.Completed)

	m.Add(trust.Evidence{Attester: buyer, Subject: vendor, CommitmentID: "cmt_late", Outcome: trust.Breached, Time: day})
	x = m.Compute(us, day).Explain(vendor)
	fmt.Println(x.Score, x.Level, x.Completed, x.Components.DisputesLost.Evidence)

	fmt.Println(m.Compute(us, day).Explain("agent://12D3KooWStranger/x").Score)
	// Output:
	// 58.05 L2 10
	// 35 L1 10 1
	// 10
}
