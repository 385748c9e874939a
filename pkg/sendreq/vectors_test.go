package sendreq

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// TestVendorRuleVectors runs the shared vectors (testdata/vendor-rules.json)
// through validation. The simulator's rules are tested against the same
// file (internal/sim), so the two cannot drift apart silently.
func TestVendorRuleVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/vendor-rules.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name    string          `json:"name"`
		Request json.RawMessage `json:"request"`
		Code    string          `json:"code"`
		Policy  struct {
			DefaultFrom          string `json:"defaultFrom"`
			EnforceCampaignCheck bool   `json:"enforceCampaignCheck"`
		} `json:"policy"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("only %d vectors", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			p := Policy{DefaultFrom: tc.Policy.DefaultFrom, EnforceCampaignCheck: tc.Policy.EnforceCampaignCheck}
			r, err := Decode(tc.Request)
			if err == nil {
				r.ApplyDefaults(p)
				err = r.Validate(p)
			}
			got := ""
			if err != nil {
				all := apperr.All(err)
				if len(all) == 0 {
					t.Fatalf("error without a code: %v", err)
				}
				got = string(all[0].Code)
				for _, e := range all { // the vector's code may not be the first of several
					if string(e.Code) == tc.Code {
						got = tc.Code
					}
				}
			}
			if got != tc.Code {
				t.Errorf("code = %q, want %q (%v)", got, tc.Code, err)
			}
		})
	}
}
