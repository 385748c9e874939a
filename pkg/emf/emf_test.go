package emf

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestShape: one JSON line in the Embedded Metric Format CloudWatch reads.
func TestShape(t *testing.T) {
	var b bytes.Buffer
	m := New(&b, "mmsgate", map[string]string{"Function": "postback"})
	m.now = func() time.Time { return time.UnixMilli(1700000000000) }
	m.Count("Postbacks", "Code", "N101")
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %s", b.Bytes())
	}
	want := map[string]any{
		"Function": "postback", "Code": "N101", "Postbacks": 1.0,
		"_aws": map[string]any{"Timestamp": 1700000000000.0, "CloudWatchMetrics": []any{map[string]any{
			"Namespace": "mmsgate", "Dimensions": []any{[]any{"Function", "Code"}},
			"Metrics": []any{map[string]any{"Name": "Postbacks", "Unit": "Count"}},
		}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EMF line (-want +got):\n%s", diff)
	}
	if bytes.Count(b.Bytes(), []byte("\n")) != 1 {
		t.Error("want exactly one line")
	}
	var nilMetrics *Metrics
	nilMetrics.Count("x") // a handler without metrics must not panic
}
