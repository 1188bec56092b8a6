package p2p

import (
	"github.com/libp2p/go-libp2p"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// DefaultLimits returns the resource manager limits a Host uses unless
// WithLimiter says otherwise: libp2p's defaults (with its service limits for
// identify, ping and the like) scaled to this machine's memory and file
// descriptors, with the stream limits between two peers raised so that two
// organizations' nodes can run well over 256 concurrent sessions.
//
// Raised, per peer: 1024 inbound and 1024 outbound streams (2048 in all),
// and 512 MiB of memory (yamux reserves a 256 KiB window per stream against
// the peer's scope); per protocol and peer: the same stream counts; for
// streams still negotiating their protocol (the transient scope): the same
// counts again.
//
// For SessionProtocol, the inbound streams of all peers together are set
// explicitly: 2048, plus 1024 per GiB of an eighth of the machine's memory
// (5120 on a 24 GiB machine). Handle gives half of them to peers without
// live business, all together, and a quarter to each such peer; the other
// half stays for peers WithProtected vouches for (see the package
// documentation, "Stream budgets and stalls"). The system-wide stream limits
// are raised so that the protocol's limit binds first, with room for the
// DHT, GossipSub and identify beside it; otherwise they stay libp2p's scaled
// defaults.
func DefaultLimits() rcmgr.ConcreteLimitConfig {
	cfg := rcmgr.DefaultLimits // a copy; its maps are nil until Add* below
	libp2p.SetDefaultServiceLimits(&cfg)

	streams := rcmgr.BaseLimit{StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048}

	peer := cfg.PeerBaseLimit
	peer.StreamsInbound = max(peer.StreamsInbound, streams.StreamsInbound)
	peer.StreamsOutbound = max(peer.StreamsOutbound, streams.StreamsOutbound)
	peer.Streams = max(peer.Streams, streams.Streams)
	peer.Memory = max(peer.Memory, 512<<20)
	cfg.PeerBaseLimit = peer

	pp := cfg.ProtocolPeerBaseLimit
	pp.StreamsInbound = max(pp.StreamsInbound, streams.StreamsInbound)
	pp.StreamsOutbound = max(pp.StreamsOutbound, streams.StreamsOutbound)
	pp.Streams = max(pp.Streams, streams.Streams)
	cfg.ProtocolPeerBaseLimit = pp

	tr := cfg.TransientBaseLimit
	tr.StreamsInbound = max(tr.StreamsInbound, streams.StreamsInbound)
	tr.StreamsOutbound = max(tr.StreamsOutbound, streams.StreamsOutbound)
	tr.Streams = max(tr.Streams, streams.Streams)
	cfg.TransientBaseLimit = tr

	session := rcmgr.BaseLimit{StreamsInbound: 2048, StreamsOutbound: 2048, Streams: 4096, Memory: cfg.ProtocolBaseLimit.Memory}
	sessionInc := rcmgr.BaseLimitIncrease{StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048, Memory: cfg.ProtocolLimitIncrease.Memory}
	cfg.AddProtocolLimit(SessionProtocol, session, sessionInc)

	// System: at least the session protocol's streams and as many again.
	sys, inc := cfg.SystemBaseLimit, cfg.SystemLimitIncrease
	sys.StreamsInbound = max(sys.StreamsInbound, 2*session.StreamsInbound)
	sys.StreamsOutbound = max(sys.StreamsOutbound, 2*session.StreamsOutbound)
	sys.Streams = max(sys.Streams, 2*session.Streams)
	inc.StreamsInbound = max(inc.StreamsInbound, 2*sessionInc.StreamsInbound)
	inc.StreamsOutbound = max(inc.StreamsOutbound, 2*sessionInc.StreamsOutbound)
	inc.Streams = max(inc.Streams, 2*sessionInc.Streams)
	cfg.SystemBaseLimit, cfg.SystemLimitIncrease = sys, inc

	return cfg.AutoScale()
}
