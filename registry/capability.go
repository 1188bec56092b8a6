package registry

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Capability names are dotted lowercase names, most general first:
// "compute", "compute.gpu-hours". Each segment is [a-z0-9][a-z0-9_-]{0,62};
// at most MaxCapabilityDepth segments and MaxCapabilityLen bytes.
const (
	MaxCapabilityLen   = 128
	MaxCapabilityDepth = 8
)

var capSegmentRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// capabilityCIDDomain is hashed before the name so a capability's content
// id never collides with content addressed by anything else.
const capabilityCIDDomain = "asp/capability/"

// ValidateCapability reports whether name is a well-formed capability
// name. Errors wrap ErrBadCapability.
func ValidateCapability(name string) error {
	if name == "" || len(name) > MaxCapabilityLen {
		return fmt.Errorf("%w: %q: length %d not in 1..%d", ErrBadCapability, name, len(name), MaxCapabilityLen)
	}
	segs := strings.Split(name, ".")
	if len(segs) > MaxCapabilityDepth {
		return fmt.Errorf("%w: %q: more than %d segments", ErrBadCapability, name, MaxCapabilityDepth)
	}
	for _, s := range segs {
		if !capSegmentRE.MatchString(s) {
			return fmt.Errorf("%w: %q: bad segment %q", ErrBadCapability, name, s)
		}
	}
	return nil
}

// NormalizeCapability trims spaces and lowercases name, then validates it.
func NormalizeCapability(name string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if err := ValidateCapability(n); err != nil {
		return "", err
	}
	return n, nil
}

// NormalizeCapabilities normalizes every name and returns them sorted and
// without duplicates.
func NormalizeCapabilities(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		c, err := NormalizeCapability(n)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CapabilityMatches reports whether capability cp answers query q: cp is
// q itself or a child of q ("compute.gpu-hours" answers "compute", not
// "comp").
func CapabilityMatches(cp, q string) bool {
	return cp == q || (len(cp) > len(q) && strings.HasPrefix(cp, q) && cp[len(q)] == '.')
}

// Prefixes returns every prefix of a capability, most general first:
// Prefixes("compute.gpu-hours") is ["compute", "compute.gpu-hours"].
// Publishing provides each, so a query for a prefix finds the children.
func Prefixes(name string) []string {
	var out []string
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			out = append(out, name[:i])
		}
	}
	return append(out, name)
}

// CapabilityCID returns the content id under which providers of a
// capability are announced on the DHT: CIDv1, raw codec, SHA2-256
// multihash of "asp/capability/" + name.
func CapabilityCID(name string) cid.Cid {
	h, err := mh.Sum([]byte(capabilityCIDDomain+name), mh.SHA2_256, -1)
	if err != nil {
		panic(err) // sha2-256 is always registered
	}
	return cid.NewCidV1(cid.Raw, h)
}
