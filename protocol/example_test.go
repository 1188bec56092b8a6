package protocol_test

import (
	"fmt"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
)

// Example plays the README's flow: the buyer's node prepares, seals and
// steps each move; the vendor's node steps what it receives.
func Example() {
	start := time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC)
	rnd := protocoltest.FixtureRand("example")
	buyer, vendor := protocoltest.FixtureParty("buyer", "buyer"), protocoltest.FixtureParty("vendor", "vendor")
	bc, _ := buyer.Certificate([]string{"buy"}, start.AddDate(1, 0, 0))
	vc, _ := vendor.Certificate([]string{"sell"}, start.AddDate(1, 0, 0))

	id, _ := protocol.NewSessionID(start, rnd)
	atBuyer := protocol.NewSession(protocol.Config{}, id, buyer.Agent(), vendor.Agent(), start)
	var atVendor *protocol.Session

	send := func(from *protocol.Session, p protocoltest.Party, cert *protocol.Certificate, perf protocol.Performative, body protocol.Body, now time.Time) {
		env, err := from.Prepare(p.Agent(), perf, body, now, rnd)
		if err != nil {
			fmt.Println("refused:", protocol.ErrorCode(err))
			return
		}
		if err := env.Seal(p.AgentKey, cert); err != nil {
			panic(err)
		}
		wire, _ := protocol.EncodeEnvelope(env)
		// The receiving node decodes and steps first, then the sender records its own.
		got, _ := protocol.DecodeEnvelope(wire)
		if atVendor == nil {
			atVendor, _, err = protocol.SessionFromInvitation(protocol.Config{}, got, now)
		} else {
			to := atVendor
			if from == atVendor {
				to = atBuyer
			}
			_, err = to.Step(got, now)
		}
		if err != nil {
			panic(err)
		}
		eff, err := from.Step(env, now)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%-8s %s → %s", perf, eff.From, eff.To)
		if eff.Commitment != nil {
			fmt.Printf(" (commitment at %s %s)", eff.Commitment.Terms.UnitPrice, eff.Commitment.Terms.Currency)
		}
		fmt.Println()
	}
	t := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	terms := protocol.Terms{Resource: "gpu-hours", Quantity: "1000", Unit: "hour", UnitPrice: "2.40", Currency: "USD"}
	send(atBuyer, buyer, bc, protocol.Propose, nil, t(0))
	send(atVendor, vendor, vc, protocol.Accept, nil, t(1))
	send(atBuyer, buyer, bc, protocol.Propose, &protocol.ProposeBody{Terms: &terms}, t(2))
	send(atVendor, vendor, vc, protocol.Counter, &protocol.CounterBody{Terms: protocol.Terms{UnitPrice: "2.80"}}, t(3))
	send(atBuyer, buyer, bc, protocol.Propose, &protocol.ProposeBody{Terms: &protocol.Terms{UnitPrice: "2.55"}}, t(4))
	send(atBuyer, buyer, bc, protocol.Accept, nil, t(5)) // nobody accepts their own offer
	send(atVendor, vendor, vc, protocol.Accept, nil, t(6))
	fmt.Println("same head:", atBuyer.Head() == atVendor.Head())
	// Output:
	// PROPOSE  IDLE → INVITED
	// ACCEPT   INVITED → INTRODUCED
	// PROPOSE  INTRODUCED → AGREEING
	// COUNTER  AGREEING → AGREEING
	// PROPOSE  AGREEING → AGREEING
	// refused: invalid_transition
	// ACCEPT   AGREEING → EXECUTING (commitment at 2.55 USD)
	// same head: true
}
