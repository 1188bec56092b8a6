// Package p2p wires the node to the libp2p network: a host with an Ed25519
// identity persisted in the node home, TCP and QUIC transports, Noise and
// TLS security, yamux, the libp2p resource manager, a connection gater
// honouring allow and deny lists of peer ids, a Kademlia DHT in server mode
// under the protocol prefix "/asp", and GossipSub with flood publishing.
//
// On top of libp2p streams it provides a small request/response layer
// (Handle and Request) with length-prefixed frames (WriteFrame, ReadFrame),
// idle timeouts, typed remote errors and per-peer reuse of idle streams.
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
// Pooled streams idle for half the idle timeout are closed, so that the
// serving side rarely has to reset them.
//
// # Lifetimes
//
// A Host lives until Close is called or the context given to New is
// cancelled, whichever comes first. GossipSub, which has no Close of its
// own, runs on the Host's context and stops with it. Close waits for
// handlers to return, so a Handler must not call Close.
package p2p
