package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aspnode/asp/node"
)

// The test binary doubles as the asp binary for tests that need real
// processes (a node killed with SIGKILL, two nodes on one home): with
// $ASP_CLI_TEST_MAIN set it runs the command line on its arguments.
const testMainEnv = "ASP_CLI_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(testMainEnv) == "1" {
		os.Exit(Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// aspProc is an asp process started by a test.
type aspProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startAsp starts `asp args...` as a child process; its output goes to a
// file whose contents failing tests print.
func startAsp(t *testing.T, args ...string) *aspProc {
	t.Helper()
	if testing.Short() {
		t.Skip("runs asp processes; skipped with -short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "asp.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), testMainEnv+"=1")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &aspProc{cmd: cmd, done: make(chan struct{}), log: log}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("asp %v output:\n%s", args, b)
		}
	})
	return p
}

// startNodeProc starts `asp node --home home` and waits until it serves.
func startNodeProc(t *testing.T, home string, args ...string) *aspProc {
	t.Helper()
	p := startAsp(t, append([]string{"node", "--home", home}, args...)...)
	awaitServing(t, p, home)
	return p
}

// awaitServing waits until the node process has written its api file and
// answers on it, or fails when the process exits first.
func awaitServing(t *testing.T, p *aspProc, home string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			t.Fatalf("node process exited: %s", b)
		default:
		}
		if code, _, _ := run(t, "agent", "list", "--home", home); code == ExitOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("node process did not serve in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the process with SIGTERM and waits for it.
func (p *aspProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("node process did not stop on SIGTERM")
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *aspProc) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Kill()
	<-p.done
}

func apiURLOf(t *testing.T, home string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, node.APIFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
