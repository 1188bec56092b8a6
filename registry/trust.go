package registry

// TrustView gives this node's trust view of an agent: a score 0–100, its
// level name and the number of completed transactions. Discovery filters
// and ranks by it. It must be cheap and safe for concurrent use; the trust
// model (registry/trust) provides one.
type TrustView func(agentID string) (score float64, level string, completed int)

// NeutralTrust is the trust view used until a trust model is wired in:
// every agent is unrated (score 0, level "L0", no completed transactions),
// so only min_trust 0 admits it, and ranking falls back to agent id.
func NeutralTrust(string) (float64, string, int) { return 0, "L0", 0 }

// Trust is one agent's trust as discovery reports it.
type Trust struct {
	Score     float64 `json:"score"`
	Level     string  `json:"level"`
	Completed int     `json:"completed"`
}
