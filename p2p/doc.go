// Package p2p wires the node to the libp2p network: a host with an Ed25519
// identity persisted in the node home, TCP and QUIC transports, Noise and
// TLS security, yamux, the libp2p resource manager, a connection gater
// honouring allow and deny lists of peer ids, a Kademlia DHT in server mode
// under the protocol prefix "/asp", GossipSub with flood publishing, and,
// when Config.MDNS names a service, discovery of other hosts on the LAN by
// multicast DNS.
//
// On top of libp2p streams it provides a small request/response layer
// (Handle and Request) with length-prefixed frames (WriteFrame, ReadFrame),
// idle and stall timeouts, per-peer stream budgets, typed remote errors and
// per-peer reuse of idle streams.
//
// # Wire format
//
// Every frame is an unsigned varint (minimally encoded) holding the payload
// length, followed by the payload; payloads longer than MaxFrameSize are
// refused. A request is one frame carrying the request bytes. A response is
// one frame whose first byte is a status:
//
//	0x00 OK      the rest of the frame is the response
//	0x01 ERROR   uvarint len(code) || code || message (UTF-8)
//
// Several request/response exchanges may follow one another on one stream;
// they never overlap. A peer that sends a malformed or oversized frame has
// its stream reset, and the handler is not called.
//
// # Request streams
//
// Request reuses streams: after an exchange the stream goes back to a small
// per-peer, per-protocol pool of idle streams (WithStreamPoolSize), and the
// next Request to that peer and protocol takes it instead of opening a new
// one. The request streams open to one peer are capped
// (WithMaxStreamsPerPeer; QUIC allows only 256 streams per connection); a
// Request beyond the cap waits for one that another Request releases.
// Pooled streams idle for half the idle timeout, or half of
// UnprotectedIdleTimeout if less, are closed, so that the serving side
// rarely has to reset them.
//
// # Stream budgets and stalls
//
// A served stream costs the node a goroutine, buffers and a place in the
// resource manager's limits, and the peer that opened it decides how long
// it lasts. Four rules keep a few peers from taking them all.
//
// Budgets. The resource manager bounds each protocol's inbound streams, all
// peers together, and each peer's (DefaultLimits: for SessionProtocol, 2048
// plus 1024 per GiB of an eighth of memory together, 1024 per peer; the
// system-wide limit is raised above it). Handle splits a protocol's limit:
// peers without live business share half of it, each taking at most a
// quarter (or the resource manager's per-peer limit, if lower: with
// DefaultLimits on a machine of more than 8 GiB the 1024 per peer binds
// first, and its refusals show only in libp2p's resource manager metrics);
// a stream beyond that is reset unread and counted in
// asp_p2p_streams_refused_total (reason "peer" or "shared"), unless another
// stream gives way to it (see Evictions). The other half is room kept for
// peers that WithProtected vouches for, the node's counterparties: their
// streams beyond the shared half are served up to the resource manager's
// own limits. The Protected function is asked only for a stream that would
// otherwise be refused.
//
// Stalls. A new stream must start its first frame within FrameStartTimeout;
// once a frame has started it must arrive within FrameStallFloor plus one
// second per MinFrameRate bytes received (the deadline moves as bytes
// arrive), or the stream is reset and asp_p2p_frames_stalled_total counts
// it. Between frames a stream may idle for the idle timeout
// (WithIdleTimeout), at most UnprotectedIdleTimeout for a stream in the
// shared budget. The payload buffer grows as bytes arrive, so a header
// announcing 1 MiB costs a few KiB until the bytes come.
//
// Evictions. A stream holds its place in the shared half only while it is
// being served. When a new stream of a peer within its own share finds the
// shared half full, another peer's stream that is not in its handler gives
// way: reset, and counted in asp_p2p_streams_evicted_total. Preferred, in
// order: a stream idle between frames (its last request answered, no byte
// of the next) over one still in a frame or not yet started; a stream of
// the peer holding the most places; the stream waiting longest since it was
// opened or last answered. Streams of protected peers (asked of the
// Protected function, a few peers per eviction at most) and streams whose
// request is in the handler never give way, and a request whose stream was
// evicted as it arrived is not served. A pooled stream of ours that a peer
// evicted is replaced as one it closed idle is (see Request). An honest
// peer's frames arrive whole, so only a peer sending frames slowly, or not
// at all, has a stream evicted in the middle of a frame: that is a strike.
//
// Scores. Each stalled, oversized or malformed frame, each new stream left
// silent, and each stream evicted in the middle of a frame is a strike
// against its peer; at StrikeLimit strikes (each forgotten StrikeWindow
// after the last) the peer's connections are closed and the Gater refuses
// it for CoolOff (asp_p2p_peers_cooled_off_total). A protected peer is
// never cooled off: its misbehaviour costs only its own streams.
//
// The adversary. A peer can open streams and hold them silent, start
// frames and never finish them, or announce large frames: each such stream
// lives seconds, costs kilobytes, and counts against that peer. It can
// also keep its streams busy without stalling (a valid request every few
// seconds, or each frame sent just inside the stall deadline): such streams
// give way to any newcomer, idle ones first, and one caught in a slow frame
// is a strike. To hold the shared half against newcomers, peers must keep
// a request in the handler on every stream they hold, and the node, not
// they, decides how long that lasts. Identities are free, so peers together
// can churn the shared half, each new stream evicting another peer's (an
// honest newcomer's request, its peer holding few places, gives way last),
// at the cost to the node of a stream opened and reset per eviction, as a
// refusal cost before; they never reach the protected half, so
// counterparties with live business keep being served. An honest peer
// without business that holds many idle or slow streams gives way first:
// its pooled streams are replaced, but a request whose new stream is
// evicted in the middle of a large frame fails. What is left: a stream
// that has not yet negotiated its protocol counts in the resource manager's
// transient scope (bounded by libp2p's negotiation timeout, not by these
// rules), and protocols other than those served by Handle (DHT, GossipSub)
// rely on libp2p's own limits.
//
// # Lifetimes
//
// A Host lives until Close is called or the context given to New is
// cancelled, whichever comes first. GossipSub, which has no Close of its
// own, runs on the Host's context and stops with it. Close waits for
// handlers to return, so a Handler must not call Close.
package p2p
