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
// # Lifetimes
//
// A Host lives until Close is called or the context given to New is
// cancelled, whichever comes first. GossipSub, which has no Close of its
// own, runs on the Host's context and stops with it.
package p2p
