// Package procnet runs a network of real ASP nodes as child processes of
// the asp binary, on loopback: what `asp testnet` starts for people, and
// what the multi-process integration tests drive.
//
// Each node has its own home, DIR/node-<i>, made with `asp init --profile
// test`; node-0 starts first and every other node bootstraps off its
// loopback TCP address. A node's stdout and stderr go to DIR/node-<i>/node.log.
package procnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
)

// Config says what network to start.
type Config struct {
	// Binary is the asp binary to run. Default: the running executable
	// (os.Executable), which is what `asp testnet` wants.
	Binary string
	// Dir holds the node homes, Dir/node-0 ... Existing homes are reused.
	Dir string
	// Nodes is the number of nodes (at least 1).
	Nodes int
	// NodeArgs are extra arguments for every `asp node`, e.g. "--log-level=debug".
	NodeArgs []string
	// StartTimeout bounds the start of one node. Default 60 s.
	StartTimeout time.Duration
	// Progress, if set, is called after each node is up with the number of
	// nodes up so far.
	Progress func(up, total int)
}

// Net is a running network.
type Net struct {
	Dir   string
	Nodes []*Node
}

// Node is one node of a network: a home and, while running, a process.
type Node struct {
	// Index is i in node-<i>.
	Index int
	// Name is "node-<i>".
	Name string
	// Home is the node's home directory.
	Home string
	// LogFile receives the process's stdout and stderr.
	LogFile string
	// AdminTokenFile is the path of the admin token.
	AdminTokenFile string

	binary string
	args   []string // extra node arguments

	mu      sync.Mutex
	proc    *proc // nil when not running
	waitErr error // how the last process ended
	info    api.NodeInfo
	apiURL  string
	token   string
	// listen are the addresses of the first run, reused on restart so that
	// peers find the node where they last saw it.
	listen []string
}

// proc is one run of a node's process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // set before done is closed
	// stopping is set (under Node.mu) when the process is asked to end.
	stopping bool
}

// Start initialises missing homes and starts the nodes one after the other,
// node-0 first. On error it stops what it started.
func Start(ctx context.Context, cfg Config) (*Net, error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("procnet: need at least 1 node, got %d", cfg.Nodes)
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("procnet: find own binary: %w", err)
		}
		cfg.Binary = exe
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	n := &Net{Dir: cfg.Dir}
	for i := 0; i < cfg.Nodes; i++ {
		name := fmt.Sprintf("node-%d", i)
		home := filepath.Join(cfg.Dir, name)
		n.Nodes = append(n.Nodes, &Node{
			Index:          i,
			Name:           name,
			Home:           home,
			LogFile:        filepath.Join(home, "node.log"),
			AdminTokenFile: filepath.Join(home, "admin.token"),
			binary:         cfg.Binary,
			args:           cfg.NodeArgs,
		})
	}
	for _, nd := range n.Nodes {
		if err := nd.init(ctx); err != nil {
			return nil, err
		}
	}
	for i, nd := range n.Nodes {
		var boot []string
		if i > 0 {
			addr, err := n.Nodes[0].LoopbackAddr()
			if err != nil {
				n.Stop()
				return nil, err
			}
			boot = []string{addr}
		}
		sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
		err := nd.start(sctx, boot)
		cancel()
		if err != nil {
			n.Stop()
			return nil, err
		}
		if cfg.Progress != nil {
			cfg.Progress(i+1, cfg.Nodes)
		}
	}
	return n, nil
}

// Stop stops every running node gracefully (SIGTERM, then SIGKILL after
// 30 s) and returns the first error.
func (n *Net) Stop() error {
	var wg sync.WaitGroup
	errs := make([]error, len(n.Nodes))
	for i, nd := range n.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = nd.Stop(30 * time.Second)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Exited returns a channel that receives a node that exited without being
// asked to. Only nodes running when Exited is called are watched.
func (n *Net) Exited() <-chan *Node {
	ch := make(chan *Node, len(n.Nodes))
	for _, nd := range n.Nodes {
		nd.mu.Lock()
		p := nd.proc
		nd.mu.Unlock()
		if p == nil {
			continue
		}
		go func() {
			<-p.done
			nd.mu.Lock()
			unasked := !p.stopping
			nd.mu.Unlock()
			if unasked {
				ch <- nd
			}
		}()
	}
	return ch
}

func (nd *Node) init(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(nd.Home, "config.yaml")); err == nil {
		return nil // reuse
	}
	out, err := exec.CommandContext(ctx, nd.binary, "init", "--home", nd.Home, "--org", nd.Name, "--profile", "test").CombinedOutput()
	if err != nil {
		return fmt.Errorf("init %s: %v: %s", nd.Home, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Restart starts a stopped or killed node again on the addresses of its
// first run, bootstrapping off boot (multiaddrs; may be empty).
func (nd *Node) Restart(ctx context.Context, boot ...string) error {
	return nd.start(ctx, boot)
}

func (nd *Node) start(ctx context.Context, boot []string) error {
	if nd.Running() {
		return fmt.Errorf("%s: already running", nd.Name)
	}

	// A node killed with SIGKILL leaves its api file behind.
	apiPath := filepath.Join(nd.Home, "api")
	if err := os.Remove(apiPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	logf, err := os.OpenFile(nd.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	args := []string{"node", "--home", nd.Home}
	nd.mu.Lock()
	for _, l := range nd.listen {
		args = append(args, "--listen", l)
	}
	nd.mu.Unlock()
	for _, b := range boot {
		args = append(args, "--bootstrap", b)
	}
	args = append(args, nd.args...)
	cmd := exec.Command(nd.binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", nd.Name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	done := p.done
	nd.mu.Lock()
	nd.proc, nd.waitErr = p, nil
	nd.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		nd.mu.Lock()
		p.err = err
		if nd.proc == p {
			nd.waitErr = err
		}
		nd.mu.Unlock()
		close(p.done)
	}()

	fail := func(err error) error {
		_ = nd.Kill()
		return fmt.Errorf("start %s: %w (log: %s)", nd.Name, err, nd.LogFile)
	}
	// Wait for the api file, then for GET /v1/node to answer.
	base, err := awaitFile(ctx, apiPath, done)
	if err != nil {
		return fail(err)
	}
	tok, err := os.ReadFile(nd.AdminTokenFile)
	if err != nil {
		return fail(err)
	}
	c := client.New(base, strings.TrimSpace(string(tok)))
	info, err := awaitNode(ctx, c, done)
	if err != nil {
		return fail(err)
	}
	nd.mu.Lock()
	nd.apiURL, nd.token, nd.info = base, c.Token, info
	if nd.listen == nil {
		for _, a := range info.Addrs {
			a, _, _ = strings.Cut(a, "/p2p/")
			nd.listen = append(nd.listen, a)
		}
	}
	nd.mu.Unlock()
	return nil
}

func awaitFile(ctx context.Context, path string, exited <-chan struct{}) (string, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return strings.TrimRight(strings.TrimSpace(string(b)), "/"), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no %s yet: %w", path, ctx.Err())
		case <-exited:
			return "", errors.New("node exited before serving")
		case <-t.C:
		}
	}
}

func awaitNode(ctx context.Context, c *client.Client, exited <-chan struct{}) (api.NodeInfo, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := c.Node(rctx)
		cancel()
		if err == nil {
			return info, nil
		}
		select {
		case <-ctx.Done():
			return api.NodeInfo{}, fmt.Errorf("GET /v1/node: %w (last: %v)", ctx.Err(), err)
		case <-exited:
			return api.NodeInfo{}, errors.New("node exited before serving")
		case <-t.C:
		}
	}
}

// Stop asks a running node to stop (SIGTERM) and waits up to timeout before
// killing it. Stopping a stopped node does nothing. A clean exit after the
// signal is not an error.
func (nd *Node) Stop(timeout time.Duration) error {
	p := nd.asked()
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-p.done:
		err = p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		err = fmt.Errorf("did not stop within %v; killed", timeout)
	}
	nd.forget(p)
	if err != nil {
		return fmt.Errorf("%s: %w (log: %s)", nd.Name, err, nd.LogFile)
	}
	return nil
}

// Kill kills the node's process with SIGKILL, as a crash would, and waits
// for it to be gone.
func (nd *Node) Kill() error {
	p := nd.asked()
	if p == nil {
		return nil
	}
	err := p.cmd.Process.Kill()
	<-p.done
	nd.forget(p)
	return err
}

// asked marks the running process as asked to end and returns it (nil if
// none runs).
func (nd *Node) asked() *proc {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.proc != nil {
		nd.proc.stopping = true
	}
	return nd.proc
}

func (nd *Node) forget(p *proc) {
	nd.mu.Lock()
	if nd.proc == p {
		nd.proc, nd.apiURL = nil, ""
	}
	nd.mu.Unlock()
}

// Running reports whether the node's process is running.
func (nd *Node) Running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.proc != nil
}

// ExitError returns how the node's last process ended (nil while running or
// after a clean exit).
func (nd *Node) ExitError() error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.waitErr
}

// Info returns GET /v1/node as read when the node started.
func (nd *Node) Info() api.NodeInfo {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.info
}

// PeerID returns the node's peer id (empty before its first start).
func (nd *Node) PeerID() string { return nd.Info().PeerID }

// APIURL returns the API base URL of the running node.
func (nd *Node) APIURL() string {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.apiURL
}

// Admin returns a client acting with the node's admin token.
func (nd *Node) Admin() *client.Client {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return client.New(nd.apiURL, nd.token)
}

// Client returns a client acting with token (an agent token).
func (nd *Node) Client(token string) *client.Client {
	return nd.Admin().WithToken(token)
}

// LoopbackAddr returns the node's TCP address on 127.0.0.1 with its peer id,
// the address other local nodes bootstrap off.
func (nd *Node) LoopbackAddr() (string, error) {
	info := nd.Info()
	for _, a := range info.Addrs {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			if !strings.Contains(a, "/p2p/") {
				a += "/p2p/" + info.PeerID
			}
			return a, nil
		}
	}
	return "", fmt.Errorf("%s has no loopback TCP address (addrs %v)", nd.Name, info.Addrs)
}
