package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestOutcomeNotesKept: the warnings and the last retrying event a sender
// records stay on the record through later writes that do not know them:
// a release without a retrying event, and an acceptance a postback proves
// (whose publisher has no request to compute the warnings from).
func TestOutcomeNotesKept(t *testing.T) {
	ctx := context.Background()
	st, c := withClock(t)
	warn := []string{"FALLBACK_TEXT_OVER_110", "FROM_MASK_TO_US"}

	mustClaim(t, st, "n-1", store.Claim{Owner: "a", Lease: c.in(time.Minute)})
	published := c.now()
	if ok, err := st.Release(ctx, "n-1", "a", store.Outcome{Attempt: 1, Code: "E503", Warnings: warn, RetryCode: "E503", RetryAt: published}); !ok || err != nil {
		t.Fatalf("Release = %v, %v", ok, err)
	}
	c.add(10 * time.Minute)
	m := mustClaim(t, st, "n-1", store.Claim{Owner: "b", Lease: c.in(time.Minute)})
	if m.RetryCode != "E503" || !m.RetryAt.Equal(published) {
		t.Errorf("claim sees retrying %q at %v, want E503 at %v", m.RetryCode, m.RetryAt, published)
	}
	// Not announced this time: the last announced one stays.
	if ok, err := st.Doubt(ctx, "n-1", "b", c.in(time.Minute), store.Outcome{Attempt: 2, Code: "TIMEOUT", Warnings: warn}); !ok || err != nil {
		t.Fatalf("Doubt = %v, %v", ok, err)
	}
	won, m, err := st.AcceptByPostback(ctx, "n-1", "TRK-1", "postback", c.in(time.Minute))
	if err != nil || !won {
		t.Fatalf("AcceptByPostback = %v, %v", won, err)
	}
	if diff := cmp.Diff(warn, m.Warnings); diff != "" {
		t.Errorf("warnings after a postback's acceptance (-want +got):\n%s", diff)
	}
	if m.RetryCode != "E503" || !m.RetryAt.Equal(published) {
		t.Errorf("retrying %q at %v, want the last published, E503 at %v", m.RetryCode, m.RetryAt, published)
	}
	got, err := st.Get(ctx, "n-1")
	if err != nil || !cmp.Equal(got.Warnings, warn) {
		t.Errorf("Get = %+v, %v: want the warnings", got, err)
	}
}
