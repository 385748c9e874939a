package sim

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// Scenario names what happens to a message after Skycore accepted it.
type Scenario string

// The scenarios, each a sequence of postbacks.
const (
	ScenarioDelivered         Scenario = "delivered"          // N101 MMS → N102
	ScenarioNoReceipt         Scenario = "no-receipt"         // N101 only: the carrier sends no receipt
	ScenarioFailed            Scenario = "failed"             // E101: could not be sent
	ScenarioUndeliveredFailed Scenario = "undelivered-failed" // N101 → E102 Message Sent/Failed
	ScenarioExpired           Scenario = "expired"            // N101 → E102 Message Sent/Expired
	ScenarioRejected          Scenario = "rejected"           // N101 → E102 Message Sent/Rejected
	ScenarioNotSupported      Scenario = "not-supported"      // N101 → E102 Message Sent/NotSupported
	ScenarioFallbackDelivered Scenario = "fallback-delivered" // N101 SENTAS=SMS → N202
	ScenarioFallbackFailed    Scenario = "fallback-failed"    // N101 SENTAS=SMS → E202
	ScenarioNone              Scenario = "none"               // no postback at all
)

var scenarioSteps = map[Scenario][]step{
	ScenarioDelivered:         {{code: "N101", sentAs: "MMS"}, {code: "N102", sentAs: "MMS", status: "Message Sent/Delivered"}},
	ScenarioNoReceipt:         {{code: "N101", sentAs: "MMS"}},
	ScenarioFailed:            {{code: "E101", status: "Message Failed", details: "Carrier rejected the message"}},
	ScenarioUndeliveredFailed: {{code: "N101", sentAs: "MMS"}, {code: "E102", sentAs: "MMS", status: "Message Sent/Failed", details: "Recipient blocked by mobile operator"}},
	ScenarioExpired:           {{code: "N101", sentAs: "MMS"}, {code: "E102", sentAs: "MMS", status: "Message Sent/Expired"}},
	ScenarioRejected:          {{code: "N101", sentAs: "MMS"}, {code: "E102", sentAs: "MMS", status: "Message Sent/Rejected"}},
	ScenarioNotSupported:      {{code: "N101", sentAs: "MMS"}, {code: "E102", sentAs: "MMS", status: "Message Sent/NotSupported"}},
	ScenarioFallbackDelivered: {{code: "N101", sentAs: "SMS", details: "Handset setting: mms with pass via xHTML"}, {code: "N202", sentAs: "SMS", status: "Message Sent/Delivered"}},
	ScenarioFallbackFailed:    {{code: "N101", sentAs: "SMS", details: "Handset setting: mms with pass via xHTML"}, {code: "E202", sentAs: "SMS", status: "Message Sent/Failed"}},
	ScenarioNone:              nil,
}

type step struct {
	code, sentAs, status, details string
}

// Scenarios picks a scenario per message: the first matching rule, else a
// weighted mix (deterministic per CLIENT_REFERENCE or TO and the seed), else
// the default.
type Scenarios struct {
	Default Scenario         `json:"default,omitempty"`
	Rules   []ScenarioRule   `json:"rules,omitempty"`
	Mix     map[Scenario]int `json:"mix,omitempty"` // scenario → weight
}

// ScenarioRule matches messages by TO or MMSID.
type ScenarioRule struct {
	Match    Match    `json:"match"`
	Scenario Scenario `json:"scenario"`
}

// Match selects requests; empty fields match anything.
type Match struct {
	ToPrefix string `json:"toPrefix,omitempty"`
	ToSuffix string `json:"toSuffix,omitempty"`
	MMSID    int64  `json:"mmsId,omitempty"`
	// ClientReferencePrefix matches CLIENT_REFERENCE.
	ClientReferencePrefix string `json:"clientReferencePrefix,omitempty"`
}

func (m Match) matches(to string, mmsID int64, ref string) bool {
	return strings.HasPrefix(to, m.ToPrefix) && strings.HasSuffix(to, m.ToSuffix) &&
		(m.MMSID == 0 || m.MMSID == mmsID) && strings.HasPrefix(ref, m.ClientReferencePrefix)
}

func (s *Scenarios) check() error {
	all := []Scenario{s.Default}
	for _, r := range s.Rules {
		all = append(all, r.Scenario)
	}
	for sc := range s.Mix {
		all = append(all, sc)
	}
	for _, sc := range all {
		if _, ok := scenarioSteps[sc]; !ok && sc != "" {
			return fmt.Errorf("unknown scenario %q", sc)
		}
	}
	return nil
}

func (s *Scenarios) pick(seed int64, to string, mmsID int64, ref string) Scenario {
	for _, r := range s.Rules {
		if r.Match.matches(to, mmsID, ref) {
			return r.Scenario
		}
	}
	if len(s.Mix) > 0 {
		names := make([]string, 0, len(s.Mix))
		total := 0
		for sc, w := range s.Mix {
			names = append(names, string(sc))
			total += w
		}
		sortStrings(names)
		if total > 0 {
			key := ref
			if key == "" {
				key = to
			}
			x := int(hash(seed, key) % uint64(total))
			for _, n := range names {
				x -= s.Mix[Scenario(n)]
				if x < 0 {
					return Scenario(n)
				}
			}
		}
	}
	if s.Default == "" {
		return ScenarioDelivered
	}
	return s.Default
}

func hash(seed int64, key string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", seed, key)
	return h.Sum64()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
