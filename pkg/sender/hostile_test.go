package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mmsgate/mmsgate/internal/localenv"
)

// TestHostileRequests: fields at and past their limits, control
// characters, invalid UTF-8 and huge data maps are each rejected with
// their code, and none reaches the simulator.
func TestHostileRequests(t *testing.T) {
	hs := newHarness(t, nil, nil)
	big := map[string]string{}
	for i := range 65 {
		big[fmt.Sprintf("k%d", i)] = "v"
	}
	bigData, _ := json.Marshal(big)
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		id, body, code string
	}{
		{"h-id-long", `{"id":"` + long(65) + `","to":"17743199144","mmsId":1000}`, ""}, // no usable id: DLQ, no event, no record
		{"h-id-utf8", `{"id":"h-id-é","to":"17743199144","mmsId":1000}`, ""},           // no usable id: DLQ, no event, no record
		{"h-subject", `{"id":"h-subject","to":"17743199144","mmsId":1000,"subject":"` + long(81) + `"}`, "E100"},
		{"h-slide", `{"id":"h-slide","to":"17743199144","mmsId":1000,"slides":[{"slide":1,"text":"` + long(5001) + `"}]}`, "E100"},
		{"h-fallback", `{"id":"h-fallback","to":"17743199144","mmsId":1000,"fallback":{"text":"` + long(161) + `"}}`, ""}, // no local limit (docs/codes.md): sent
		{"h-to", `{"id":"h-to","to":"` + strings.Repeat("1", 16) + `","mmsId":1000}`, "E110"},
		{"h-nul", `{"id":"h-nul","to":"17743199144","mmsId":1000,"subject":"a\u0000b"}`, "E108"},
		{"h-nul-text", `{"id":"h-nul-text","to":"17743199144","mmsId":1000,"slides":[{"slide":1,"text":"a\u0000b"}]}`, "E108"},
		{"h-nul-fallback", `{"id":"h-nul-fallback","to":"17743199144","mmsId":1000,"fallback":{"text":"a\u0000b"}}`, "E108"},
		{"h-esc", `{"id":"h-esc","to":"17743199144","mmsId":1000,"slides":[{"slide":1,"text":"\u001b[31mred"}]}`, "E108"},
		{"h-bom", `{"id":"h-bom","to":"17743199144","mmsId":1000,"data":{"a":"\ufffe"}}`, "E108"},
		{"h-utf8", "{\"id\":\"h-utf8\",\"to\":\"17743199144\",\"mmsId\":1000,\"subject\":\"\xff\xfe\"}", ""},          // JSON turns it into U+FFFD: valid
		{"h-data", `{"id":"h-data","to":"17743199144","mmsId":1000,"data":` + string(bigData) + `}`, ""},              // no local limit (docs/codes.md): sent
		{"h-value", `{"id":"h-value","to":"17743199144","mmsId":1000,"data":{"a":"` + long(1001) + `"}}`, ""},         // no local limit (docs/codes.md): sent
		{"h-vcard", `{"id":"h-vcard","to":"17743199144","mmsId":1000,"vcard":{"lastName":"` + long(1001) + `"}}`, ""}, // no local limit (docs/codes.md): sent
		{"h-mmsid", `{"id":"h-mmsid","to":"17743199144","mmsId":99999999999999999999}`, "E620"},
		{"h-mmsid-exp", `{"id":"h-mmsid-exp","to":"17743199144","mmsId":1e3}`, "E620"},
		{"h-no-id", `{"to":"17743199144","mmsId":1000}`, ""}, // DLQ, no event: no id to name
	}
	ev := events.SQSEvent{}
	for _, tt := range tests {
		r := loadEvent(t, "contract-example").Records[0]
		r.MessageId, r.Body = tt.id, tt.body
		ev.Records = append(ev.Records, r)
	}
	resp, err := hs.invoke(t, context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("invoke = %+v, %v", resp, err)
	}
	evs, _ := hs.env.DrainEvents()
	got := map[string]string{}
	for _, e := range evs {
		got[e.ID] = e.Event + ":" + e.Code
	}
	for _, tt := range tests {
		switch tt.id {
		case "h-id-long", "h-id-utf8":
			// Kept in the DLQ with no event: there is no usable id to record,
			// so an event could not be de-duplicated (every redelivery or
			// redrive would publish it again).
			if e, ok := got[long(65)]; ok {
				t.Errorf("over-long id: event %s", e)
			}
			if e, ok := got["h-id-\u00e9"]; ok {
				t.Errorf("non-ASCII id: event %s", e)
			}
			var bodies string
			dlq := hs.peek(t, localenv.SendDLQ)
			for _, m := range dlq {
				bodies += aws.ToString(m.Body)
			}
			if len(dlq) != 3 || !strings.Contains(bodies, long(65)) || !strings.Contains(bodies, "h-id-\u00e9") {
				t.Errorf("over-long, non-ASCII and missing id: DLQ = %+v", dlq)
			}
		case "h-no-id":
			if _, ok := got[""]; ok {
				t.Errorf("an event without an id was published: %v", got)
			}
		case "h-utf8", "h-fallback", "h-data", "h-value", "h-vcard":
			if got[tt.id] != "accepted:" {
				t.Errorf("%s: %q, want accepted (no local limit; the JSON decoder already replaced h-utf8's bytes)", tt.id, got[tt.id])
			}
		default:
			if got[tt.id] != "rejected:"+tt.code {
				t.Errorf("%s: %q, want rejected:%s", tt.id, got[tt.id], tt.code)
			}
		}
	}
	for _, r := range hs.sim.Requests() {
		if tt := r.ClientReference; tt != "h-utf8" && tt != "h-fallback" && tt != "h-data" && tt != "h-value" && tt != "h-vcard" {
			t.Errorf("%s reached the simulator", r.ClientReference)
		}
	}
}
