// Package netnstest runs a test in a network namespace of its own whose only
// interface is loopback, for tests that must not reach beyond the machine
// but cannot be told which interface to use, such as mDNS, which multicasts
// on every interface.
//
// A test calls Run first thing:
//
//	func TestLAN(t *testing.T) {
//		if !netnstest.Run(t) {
//			return // ran (or was skipped) in the namespace
//		}
//		// here: inside the namespace, loopback only
//	}
//
// Outside the namespace, Run starts a copy of the test binary inside a new
// namespace (`unshare -n`, which needs root) running only t, fails t unless
// that copy passes, and returns false. Inside, it checks that loopback is
// the only interface and returns true. Where the namespace cannot be made,
// or under -short, it skips t and says why.
package netnstest

import (
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// innerEnv marks the copy of the test binary that runs inside the
// namespace.
const innerEnv = "ASP_TEST_NETNS"

// Run runs t, a top-level test, in a private network namespace; see the
// package documentation.
// It returns true only in the copy of the test binary inside the namespace,
// where the caller goes on with the test's body.
func Run(t *testing.T) bool {
	t.Helper()
	if os.Getenv(innerEnv) != "" {
		// Refuse to go on anywhere but on a lone loopback interface.
		ifs, err := net.Interfaces()
		if err != nil {
			t.Fatal(err)
		}
		if len(ifs) != 1 || ifs[0].Flags&net.FlagLoopback == 0 {
			t.Fatalf("expected only loopback in the private namespace, found %v", ifs)
		}
		return true
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
		os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), innerEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("inside the namespace: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("inside the namespace the test did not pass:\n%s", out)
	}
	t.Logf("inside the namespace:\n%s", out)
	return false
}
