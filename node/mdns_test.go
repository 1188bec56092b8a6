package node

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// mdnsInnerEnv marks the copy of the test binary that runs inside a private
// network namespace.
const mdnsInnerEnv = "ASP_TEST_MDNS_NETNS"

// TestMDNSInPrivateNetwork checks LAN discovery with mDNS: two nodes with
// mdns: true and no bootstrap peers find each other, connect and close the
// seed deal. mDNS multicasts on every interface, so the test runs the nodes
// in a network namespace of their own whose only interface is loopback
// (`unshare -n`, which needs root): nothing leaves the machine. Where that
// namespace cannot be made, the test is skipped and says why.
func TestMDNSInPrivateNetwork(t *testing.T) {
	if os.Getenv(mdnsInnerEnv) != "" {
		mdnsInNamespace(t)
		return
	}
	if testing.Short() {
		t.Skip("short: skips the test that runs in a private network namespace")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a private network namespace (unshare -n)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare command")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip command")
	}
	if out, err := exec.Command(unshare, "-n", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here: %v: %s", err, out)
	}
	// Bring loopback up with multicast on, then run this test again inside.
	script := `"$1" link set lo up && "$1" link set lo multicast on && shift && exec "$@"`
	cmd := exec.Command(unshare, "-n", "sh", "-c", script, "sh", ip,
		os.Args[0], "-test.run=^TestMDNSInPrivateNetwork$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), mdnsInnerEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("inside the namespace: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestMDNSInPrivateNetwork") {
		t.Fatalf("inside the namespace the test did not pass:\n%s", out)
	}
	t.Logf("inside the namespace:\n%s", out)
}

func mdnsInNamespace(t *testing.T) {
	// Refuse to multicast anywhere but a lone loopback interface.
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 || ifs[0].Flags&net.FlagLoopback == 0 {
		t.Fatalf("expected only loopback in the private namespace, found %v", ifs)
	}
	dir := t.TempDir()
	withMDNS := func(c *Config) { c.MDNS = true; c.Bootstrap = nil }
	a := startNodeWith(t, filepath.Join(dir, "buyer-org"), withMDNS)
	b := startNodeWith(t, filepath.Join(dir, "vendor-org"), withMDNS)
	t.Cleanup(func() { a.Close(); b.Close() })

	deadline := time.Now().Add(30 * time.Second)
	for a.host.Host().Network().Connectedness(b.host.ID()) != network.Connected {
		if time.Now().After(deadline) {
			t.Fatal("the two nodes did not find each other over mDNS within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("connected over mDNS after %v", 30*time.Second-time.Until(deadline))

	p := withAgents(t, a, b)
	id := seedDeal(t, p)
	awaitActive(t, a, id)
	awaitActive(t, b, id)
}
