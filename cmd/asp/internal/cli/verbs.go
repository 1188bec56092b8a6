package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
)

// The agent-facing verbs: what an agent does through the node's API, from
// a shell. A verb that acts for an agent takes the agent's token: --token,
// else $ASP_TOKEN, else with --agent NAME the token `asp agent add
// --save-token` kept in DIR/agents/NAME.token. One that only reads takes it
// too, or falls back to the node's admin token read from its home.

// tokenEnv names the environment variable holding an agent's token.
const tokenEnv = "ASP_TOKEN"

// nodeFlags are the flags every verb shares.
type nodeFlags struct {
	home   string
	token  string
	agent  string
	asJSON bool
}

func (f *nodeFlags) register(cmd *cobra.Command, jsonHelp string) {
	fl := cmd.Flags()
	fl.StringVar(&f.home, "home", "", "home of the running node (required)")
	fl.StringVar(&f.token, "token", "", "the agent's bearer token (default $"+tokenEnv+")")
	fl.StringVar(&f.agent, "agent", "", "act as this agent of the node, with the token kept by asp agent add --save-token")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON: "+jsonHelp)
}

// agentClient is a client acting as the agent whose token was given.
func (f *nodeFlags) agentClient() (*client.Client, error) {
	c, err := adminClient(f.home)
	if err != nil {
		return nil, err
	}
	tok := f.token
	if tok == "" && f.agent != "" {
		if tok, err = agentToken(f.home, f.agent, ""); err != nil {
			return nil, err
		}
	}
	if tok == "" {
		tok = os.Getenv(tokenEnv)
	}
	if tok == "" {
		return nil, usageErrorf("an agent's token is required: --agent NAME, --token TOKEN or $%s (asp agent add prints it)", tokenEnv)
	}
	return c.WithToken(tok), nil
}

// readClient acts as the agent if a token was given, else as the admin.
func (f *nodeFlags) readClient() (*client.Client, error) {
	if f.token != "" || f.agent != "" || os.Getenv(tokenEnv) != "" {
		return f.agentClient()
	}
	return adminClient(f.home)
}

func (a *app) sessionCommand() *cobra.Command {
	cmd := groupCommand("session", "Open sessions and make moves as an agent (open, send, show, list)")
	cmd.AddCommand(a.sessionOpenCommand(), a.sessionSendCommand(), a.sessionShowCommand(), a.sessionListCommand())
	return cmd
}

func (a *app) sessionOpenCommand() *cobra.Command {
	var f nodeFlags
	var to string
	cmd := &cobra.Command{
		Use:   "open --to AGENT_ID --home DIR --token TOKEN",
		Short: "Invite another organization's agent to a session",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlag("to", to); err != nil {
				return err
			}
			c, err := f.agentClient()
			if err != nil {
				return err
			}
			s, err := c.OpenSession(cmd.Context(), to)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(a.stdout, s)
			}
			fmt.Fprintf(a.stdout, "session  %s\nstate    %s\n", s.SessionID, s.State)
			return nil
		},
	}
	f.register(cmd, "the session")
	cmd.Flags().StringVar(&to, "to", "", "the agent invited, agent://<peerId>/<name> (required)")
	return cmd
}

func (a *app) sessionSendCommand() *cobra.Command {
	var f nodeFlags
	var terms, ref, body string
	cmd := &cobra.Command{
		Use:   "send SESSION PERFORMATIVE [--terms JSON] [--ref MESSAGE_ID] [--body JSON] --home DIR --token TOKEN",
		Short: "Sign and send a move (PROPOSE, COUNTER, ACCEPT, REJECT, WITHDRAW, CLOSE, ...)",
		Long: `Sign and send a move in a session, as the agent whose token is given.

Terms are JSON with decimals as strings, e.g.
  --terms '{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":"2.55","currency":"USD"}'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.SendMessageRequest{Performative: strings.ToUpper(args[1]), ReferenceID: ref}
			for _, j := range []struct {
				name, v string
				dst     *json.RawMessage
			}{{"terms", terms, &req.Terms}, {"body", body, &req.Body}} {
				if j.v == "" {
					continue
				}
				if !json.Valid([]byte(j.v)) {
					return usageErrorf("--%s is not JSON: %s", j.name, j.v)
				}
				*j.dst = json.RawMessage(j.v)
			}
			c, err := f.agentClient()
			if err != nil {
				return err
			}
			res, err := c.Send(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(a.stdout, res)
			}
			fmt.Fprintf(a.stdout, "message     %s\nsequence    %d\nstate       %s\n", res.MessageID, res.SequenceNumber, res.State)
			if res.CommitmentID != "" {
				fmt.Fprintf(a.stdout, "commitment  %s\n", res.CommitmentID)
			}
			return nil
		},
	}
	f.register(cmd, "{messageId, sequenceNumber, hash, state, commitmentId?}")
	fl := cmd.Flags()
	fl.StringVar(&terms, "terms", "", "the offer's terms, JSON")
	fl.StringVar(&ref, "ref", "", "the message answered (referenceId)")
	fl.StringVar(&body, "body", "", "the rest of the body, JSON")
	return cmd
}

func (a *app) sessionShowCommand() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "show SESSION --home DIR [--token TOKEN]",
		Short: "Show a session and its transcript",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.readClient()
			if err != nil {
				return err
			}
			s, err := c.Session(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(a.stdout, s)
			}
			fmt.Fprintf(a.stdout, "session  %s\nstate    %s\n", s.SessionID, s.State)
			if s.Reason != "" {
				fmt.Fprintf(a.stdout, "reason   %s\n", s.Reason)
			}
			fmt.Fprintf(a.stdout, "parties  %s\n", strings.Join(s.Participants, " → "))
			if s.CommitmentID != "" {
				fmt.Fprintf(a.stdout, "commitment  %s\n", s.CommitmentID)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tPERFORMATIVE\tSENDER\tTERMS")
			for _, raw := range s.Messages {
				var m struct {
					SequenceNumber uint64          `json:"sequenceNumber"`
					Performative   string          `json:"performative"`
					Sender         string          `json:"sender"`
					Body           json.RawMessage `json:"body"`
				}
				if json.Unmarshal(raw, &m) != nil {
					continue
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.SequenceNumber, m.Performative, m.Sender, termsLine(m.Body))
			}
			return tw.Flush()
		},
	}
	f.register(cmd, "the session with its signed envelopes")
	return cmd
}

// termsLine is an offer's price and quantity, for a table.
func termsLine(body json.RawMessage) string {
	var b struct {
		Terms *struct {
			Quantity  string `json:"quantity"`
			Unit      string `json:"unit"`
			UnitPrice string `json:"unitPrice"`
			Currency  string `json:"currency"`
		} `json:"terms"`
	}
	if json.Unmarshal(body, &b) != nil || b.Terms == nil {
		return ""
	}
	t := b.Terms
	return strings.TrimSpace(fmt.Sprintf("%s %s at %s %s", t.Quantity, t.Unit, t.UnitPrice, t.Currency))
}

func (a *app) sessionListCommand() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "list --home DIR [--token TOKEN]",
		Short: "List sessions (an agent's, or every session with the admin token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.readClient()
			if err != nil {
				return err
			}
			list, err := c.Sessions(cmd.Context())
			if err != nil {
				return err
			}
			if f.asJSON {
				if list == nil {
					list = []api.SessionInfo{}
				}
				return printJSON(a.stdout, map[string]any{"sessions": list})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SESSION\tSTATE\tMESSAGES\tCOMMITMENT\tPARTIES")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.SessionID, s.State, len(s.Messages), s.CommitmentID, strings.Join(s.Participants, " → "))
			}
			return tw.Flush()
		},
	}
	f.register(cmd, "{sessions: [...]}")
	return cmd
}

func (a *app) commitmentCommand() *cobra.Command {
	cmd := groupCommand("commitment", "Read commitments and act on them as an agent (list, show, fulfill, confirm, dispute)")
	cmd.AddCommand(a.commitmentListCommand(), a.commitmentShowCommand(),
		a.commitmentActCommand("fulfill", "Claim fulfilment of a commitment"),
		a.commitmentActCommand("confirm", "Confirm the counterparty's fulfilment claim"),
		a.commitmentActCommand("dispute", "Dispute a commitment"))
	return cmd
}

func (a *app) commitmentListCommand() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "list --home DIR [--token TOKEN]",
		Short: "List commitments (an agent's, or every one with the admin token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.readClient()
			if err != nil {
				return err
			}
			list, err := c.Commitments(cmd.Context())
			if err != nil {
				return err
			}
			if f.asJSON {
				if list == nil {
					list = []api.CommitmentInfo{}
				}
				return printJSON(a.stdout, map[string]any{"commitments": list})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "COMMITMENT\tSTATE\tTERMS\tPARTIES")
			for _, cm := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cm.CommitmentID, cm.State, termsLine(json.RawMessage(`{"terms":`+string(cm.Terms)+`}`)), strings.Join(cm.Parties, ", "))
			}
			return tw.Flush()
		},
	}
	f.register(cmd, "{commitments: [...]}")
	return cmd
}

func (a *app) commitmentShowCommand() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "show COMMITMENT --home DIR [--token TOKEN]",
		Short: "Show a commitment: terms, parties, signatures, receipts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.readClient()
			if err != nil {
				return err
			}
			cm, err := c.Commitment(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(a.stdout, cm)
			}
			printCommitment(a.stdout, cm)
			return nil
		},
	}
	f.register(cmd, "the commitment")
	return cmd
}

func printCommitment(w interface{ Write([]byte) (int, error) }, cm api.CommitmentInfo) {
	fmt.Fprintf(w, "commitment  %s\nstate       %s\nsession     %s\nterms       %s\n", cm.CommitmentID, cm.State, cm.SessionID, string(cm.Terms))
	for _, s := range cm.Signatures {
		fmt.Fprintf(w, "signed by   %s (message %s)\n", s.Agent, s.MessageID)
	}
	for _, r := range cm.Receipts {
		fmt.Fprintf(w, "receipt     %s, ledger entry %d\n", r.Org, r.LedgerIndex)
	}
}

func (a *app) commitmentActCommand(action, short string) *cobra.Command {
	var f nodeFlags
	var note, reason, severity, evidence string
	cmd := &cobra.Command{
		Use:   action + " COMMITMENT --home DIR --token TOKEN",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ev json.RawMessage
			if evidence != "" {
				if !json.Valid([]byte(evidence)) {
					return usageErrorf("--evidence is not JSON: %s", evidence)
				}
				ev = json.RawMessage(evidence)
			}
			c, err := f.agentClient()
			if err != nil {
				return err
			}
			var cm api.CommitmentInfo
			switch action {
			case "fulfill":
				cm, err = c.Fulfill(cmd.Context(), args[0], api.FulfillRequest{Evidence: ev, Note: note})
			case "confirm":
				cm, err = c.Confirm(cmd.Context(), args[0], api.ConfirmRequest{Note: note})
			default:
				if reason == "" {
					reason = note
				}
				cm, err = c.Dispute(cmd.Context(), args[0], api.DisputeRequest{Reason: reason, Severity: severity, Evidence: ev})
			}
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(a.stdout, cm)
			}
			printCommitment(a.stdout, cm)
			return nil
		},
	}
	f.register(cmd, "the commitment after the action")
	fl := cmd.Flags()
	fl.StringVar(&note, "note", "", "a note for the counterparty")
	if action != "confirm" {
		fl.StringVar(&evidence, "evidence", "", "evidence, JSON")
	}
	if action == "dispute" {
		fl.StringVar(&reason, "reason", "", "why the commitment is disputed")
		fl.StringVar(&severity, "severity", "", "low, medium (default) or high")
	}
	return cmd
}

func (a *app) discoverCommand() *cobra.Command {
	var f nodeFlags
	var capability string
	var minTrust float64
	var limit int
	cmd := &cobra.Command{
		Use:   "discover --capability C --home DIR [--min-trust T] [--limit K]",
		Short: "Find agents with a capability across the network",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlag("capability", capability); err != nil {
				return err
			}
			c, err := f.readClient()
			if err != nil {
				return err
			}
			res, err := c.Discover(cmd.Context(), api.DiscoverQuery{Capability: capability, MinTrust: minTrust, Limit: limit})
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(a.stdout, res)
			}
			if len(res.Agents) == 0 {
				fmt.Fprintf(a.stdout, "no agent offers %s (yet)\n", capability)
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "AGENT\tTRUST\tLEVEL\tCOMPLETED")
			for _, ag := range res.Agents {
				fmt.Fprintf(tw, "%s\t%.1f\t%s\t%d\n", ag.AgentID, ag.Trust.Score, ag.Trust.Level, ag.Trust.Completed)
			}
			return tw.Flush()
		},
	}
	f.register(cmd, "{agents: [...], partial?}")
	fl := cmd.Flags()
	fl.StringVar(&capability, "capability", "", "the capability, e.g. compute.gpu-hours (required)")
	fl.Float64Var(&minTrust, "min-trust", 0, "the lowest trust score (0-100)")
	fl.IntVar(&limit, "limit", 0, "the most agents to return")
	return cmd
}

func (a *app) trustCommand() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "trust AGENT_ID --home DIR",
		Short: "Show the node's trust score for an agent",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.readClient()
			if err != nil {
				return err
			}
			t, err := c.Trust(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(a.stdout, t)
			}
			fmt.Fprintf(a.stdout, "agent      %s\nscore      %.2f\nlevel      %s\ncompleted  %d\n", t.AgentID, t.Score, t.Level, t.Completed)
			return nil
		},
	}
	f.register(cmd, "the trust answer")
	return cmd
}

func (a *app) eventsCommand() *cobra.Command {
	var f nodeFlags
	var since string
	var count int
	cmd := &cobra.Command{
		Use:   "events --home DIR --token TOKEN [--since ID] [--count N]",
		Short: "Follow an agent's events (sessions, messages, commitments, trust), resuming after disconnections",
		Long: `Follow an agent's events, one line each (JSON lines with --json), until
interrupted or until --count events were printed. --since resumes after an
event id printed earlier.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.agentClient()
			if err != nil {
				return err
			}
			s := c.Events(cmd.Context(), client.EventsOptions{LastEventID: since})
			defer s.Close()
			for n := 0; count == 0 || n < count; n++ {
				ev, err := s.Next()
				if err != nil {
					if cmd.Context().Err() != nil {
						return nil
					}
					return err
				}
				if f.asJSON {
					b, _ := json.Marshal(map[string]any{"id": ev.ID, "type": ev.Type, "data": ev.Data})
					fmt.Fprintln(a.stdout, string(b))
				} else {
					fmt.Fprintf(a.stdout, "%s  %-10s  %s\n", ev.ID, ev.Type, string(ev.Data))
				}
			}
			return nil
		},
	}
	f.register(cmd, "one JSON object per line: {id, type, data}")
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "resume after this event id")
	fl.IntVar(&count, "count", 0, "stop after N events (0: follow until interrupted)")
	return cmd
}
