// Command asp runs an ASP node and the tools around it: init, node,
// testnet, agent and audit. See README.md.
package main

import (
	"context"
	"os"

	"github.com/aspnode/asp/cmd/asp/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
