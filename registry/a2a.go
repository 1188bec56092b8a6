package registry

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/aspnode/asp/protocol"
)

// A2A rendering of a card: the AgentCard document of the A2A protocol
// (version A2AProtocolVersion), so A2A clients can read what an agent
// offers. Each capability becomes a skill; the signed ASP card rides in a
// capabilities extension (A2ACardExtension) for clients that verify it,
// with the agent id, protocol version and certificate expiry beside it (an
// AgentCard has no free-form metadata field).

// A2AProtocolVersion is the A2A protocol version the document follows.
const A2AProtocolVersion = "0.3.0"

// A2ACardExtension is the extension URI carrying the signed ASP card.
const A2ACardExtension = "urn:asp:card:1.0"

// A2ATransport names ASP over libp2p in the A2A transport fields.
const A2ATransport = "ASP+libp2p"

// A2ACard is an A2A AgentCard document.
type A2ACard struct {
	ProtocolVersion      string          `json:"protocolVersion"`
	Name                 string          `json:"name"`
	Description          string          `json:"description"`
	URL                  string          `json:"url"`
	PreferredTransport   string          `json:"preferredTransport"`
	AdditionalInterfaces []A2AInterface  `json:"additionalInterfaces,omitempty"`
	Provider             A2AProvider     `json:"provider"`
	Version              string          `json:"version"`
	Capabilities         A2ACapabilities `json:"capabilities"`
	DefaultInputModes    []string        `json:"defaultInputModes"`
	DefaultOutputModes   []string        `json:"defaultOutputModes"`
	Skills               []A2ASkill      `json:"skills"`
}

// A2AInterface is a URL and the transport it speaks.
type A2AInterface struct {
	URL       string `json:"url"`
	Transport string `json:"transport"`
}

// A2AProvider names the organization behind the agent.
type A2AProvider struct {
	Organization string `json:"organization"`
	URL          string `json:"url"`
}

// A2ACapabilities lists optional A2A features and extensions.
type A2ACapabilities struct {
	Streaming         bool           `json:"streaming"`
	PushNotifications bool           `json:"pushNotifications"`
	Extensions        []A2AExtension `json:"extensions,omitempty"`
}

// A2AExtension declares an extension with its parameters.
type A2AExtension struct {
	URI         string         `json:"uri"`
	Description string         `json:"description,omitempty"`
	Required    bool           `json:"required"`
	Params      map[string]any `json:"params,omitempty"`
}

// A2ASkill is one thing the agent does: here, one capability.
type A2ASkill struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Tags        []string `json:"tags"`
}

// A2A renders the card as an A2A AgentCard document. url is where A2A
// clients reach the agent (for example the node's card URL); empty: the
// agent id. Each endpoint becomes an additional interface; the signed card
// is in the A2ACardExtension params under "card".
func (c *Card) A2A(url string) *A2ACard {
	if url == "" {
		url = c.AgentID
	}
	d := &A2ACard{
		ProtocolVersion:    A2AProtocolVersion,
		Name:               c.Name,
		Description:        c.Description,
		URL:                url,
		PreferredTransport: A2ATransport,
		Provider:           A2AProvider{Organization: c.Org, URL: "agent://" + c.Org},
		Version:            strconv.FormatUint(c.Version, 10),
		Capabilities: A2ACapabilities{Extensions: []A2AExtension{{
			URI:         A2ACardExtension,
			Description: "Signed ASP agent card; verify it with the organization key embedded in its org peer id.",
			Params: map[string]any{
				"card":     json.RawMessage(mustJSON(c)),
				"agentId":  c.AgentID,
				"protocol": protocol.Version,
				"notAfter": protocol.FormatTime(c.NotAfter),
			},
		}}},
		DefaultInputModes:  []string{"application/asp+json"},
		DefaultOutputModes: []string{"application/asp+json"},
		Skills:             []A2ASkill{},
	}
	for _, e := range c.Endpoints {
		d.AdditionalInterfaces = append(d.AdditionalInterfaces, A2AInterface{URL: e, Transport: A2ATransport})
	}
	for _, cp := range c.Capabilities {
		d.Skills = append(d.Skills, A2ASkill{
			ID:          cp,
			Name:        cp,
			Description: "Negotiates " + cp + " under ASP (" + protocol.Version + ").",
			Tags:        strings.Split(cp, "."),
		})
	}
	return d
}

func mustJSON(c *Card) []byte {
	b, err := c.MarshalJSON()
	if err != nil {
		return []byte("null")
	}
	return b
}
