//go:build asptools

// Package deps pins the modules the node is built from.
package deps

import (
	_ "github.com/cockroachdb/pebble/v2"
	_ "github.com/fxamacker/cbor/v2"
	_ "github.com/goccy/go-yaml"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/libp2p/go-libp2p"
	_ "github.com/libp2p/go-libp2p-kad-dht"
	_ "github.com/libp2p/go-libp2p-pubsub"
	_ "github.com/multiformats/go-multiaddr"
	_ "github.com/ipfs/go-cid"
	_ "github.com/multiformats/go-multihash"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "github.com/transparency-dev/formats/log"
	_ "github.com/transparency-dev/merkle"
	_ "go.uber.org/goleak"
	_ "golang.org/x/mod/sumdb/note"
	_ "github.com/cockroachdb/datadriven"
)
