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
// counts again. System-wide limits stay libp2p's scaled defaults.
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

	return cfg.AutoScale()
}
