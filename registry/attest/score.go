package attest

import (
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer score thresholds of PeerScoreParams.
const (
	GossipThreshold    = -10  // below: no gossip to or from the peer
	PublishThreshold   = -50  // below: our publications skip the peer
	GraylistThreshold  = -80  // below: everything from the peer is dropped unread
	AcceptPXThreshold  = 10   // above: peer exchange from the peer is followed
	OpportunisticGraft = 2    // median mesh score below which better peers are grafted
	invalidWeight      = -10  // per invalid message, squared: 3 rejected messages graylist a peer
	invalidDecay       = 0.99 // per second: an invalid message weighs half after about 70 s
)

// PeerScoreParams returns GossipSub peer-scoring parameters for a node
// that carries Topic, for p2p.WithPeerScore:
//
//   - the application-specific score (Service.AppScore, fed from the
//     trust model) counts with weight 1, in score units: a value below
//     GraylistThreshold (-80) silences a peer on every topic;
//   - on Topic, each message the validator rejects adds −10 × (count)²,
//     decaying by 1 % a second, so three forgeries graylist a peer and it
//     recovers within minutes; ignored messages cost nothing;
//   - IP colocation is not penalised (organisations share NATs and
//     testnets share 127.0.0.1), nor is any other behaviour.
//
// Install the app score with host.SetAppSpecificScore(svc.AppScore).
func PeerScoreParams() (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	params := &pubsub.PeerScoreParams{
		Topics: map[string]*pubsub.TopicScoreParams{
			Topic: {
				TopicWeight:                    1,
				TimeInMeshQuantum:              time.Second,
				InvalidMessageDeliveriesWeight: invalidWeight,
				InvalidMessageDeliveriesDecay:  invalidDecay,
			},
		},
		AppSpecificScore:  func(p peer.ID) float64 { return 0 },
		AppSpecificWeight: 1,
		DecayInterval:     time.Second,
		DecayToZero:       0.01,
		RetainScore:       10 * time.Minute,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:             GossipThreshold,
		PublishThreshold:            PublishThreshold,
		GraylistThreshold:           GraylistThreshold,
		AcceptPXThreshold:           AcceptPXThreshold,
		OpportunisticGraftThreshold: OpportunisticGraft,
	}
	return params, thresholds
}
