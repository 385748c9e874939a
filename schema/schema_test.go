package schema_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/schema"
)

func load(t *testing.T, name string) *schema.Schema {
	t.Helper()
	s, err := schema.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jsonFields lists the JSON names of a struct's fields.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// compare checks that the struct typ and the schema node have the same
// fields, and recurses into nested structs (pointers, slices of them).
func compare(t *testing.T, s *schema.Schema, typ reflect.Type, node map[string]any, path string) {
	t.Helper()
	node = s.Resolve(node)
	props, _ := node["properties"].(map[string]any)
	var inSchema []string
	for k := range props {
		inSchema = append(inSchema, k)
	}
	sort.Strings(inSchema)
	if diff := cmp.Diff(jsonFields(typ), inSchema); diff != "" {
		t.Errorf("%s: Go fields (-) differ from schema properties (+):\n%s", path, diff)
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		ft := f.Type
		child, _ := props[name].(map[string]any)
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			if ft.Kind() == reflect.Slice && child != nil {
				child, _ = s.Resolve(child)["items"].(map[string]any)
			}
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && child != nil {
			compare(t, s, ft, child, path+"."+name)
		}
	}
}

func TestFieldsMatchGoTypes(t *testing.T) {
	cases := map[string]struct {
		schema string
		typ    reflect.Type
	}{
		"send request":   {schema.SendRequest, reflect.TypeFor[sendreq.Request]()},
		"delivery event": {schema.DeliveryEvent, reflect.TypeFor[delivery.Event]()},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := load(t, c.schema)
			compare(t, s, c.typ, s.Root(), "(root)")
		})
	}
}

// eventKinds reads the string constants of pkg/delivery whose names the
// contract gives to event kinds (every const block holding Accepted).
func eventKinds(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../pkg/delivery/delivery.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		var block []string
		holdsAccepted := false
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if n.Name == "Accepted" {
					holdsAccepted = true
				}
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						block = append(block, v)
					}
				}
			}
		}
		if holdsAccepted {
			kinds = append(kinds, block...)
		}
	}
	return kinds
}

func TestEventKinds(t *testing.T) {
	s := load(t, schema.DeliveryEvent)
	var enum []string
	for _, v := range s.Root()["properties"].(map[string]any)["event"].(map[string]any)["enum"].([]any) {
		enum = append(enum, v.(string))
	}
	// docs/events.md's table, at least.
	for _, k := range []string{"accepted", "rejected", "retrying", "expired", "sent", "delivered", "undelivered", "failed"} {
		if !slices.Contains(enum, k) {
			t.Errorf("the contract's event %q is not in the schema's enum", k)
		}
	}
	// Exactly the kinds pkg/delivery publishes.
	kinds := eventKinds(t)
	slices.Sort(kinds)
	sorted := slices.Sorted(slices.Values(enum))
	if diff := cmp.Diff(kinds, sorted); diff != "" {
		t.Errorf("pkg/delivery's kinds (-) differ from the schema's enum (+):\n%s", diff)
	}
}

// unexpressible are the rules JSON Schema cannot state; a body the sender
// rejects only for these may pass the schema.
func unexpressible(e *apperr.Error) bool {
	switch {
	case e.Code == "E108", e.Code == "E1501", e.Code == "E1515":
		return true
	case strings.Contains(e.Message, "given twice"), strings.Contains(e.Message, "same DATA element"),
		strings.Contains(e.Message, "more than"):
		return true
	}
	return false
}

// TestSampleEvents checks every body of events/sqs: the schema accepts
// exactly what the sender accepts (up to the rules it cannot express).
func TestSampleEvents(t *testing.T) {
	s := load(t, schema.SendRequest)
	files, err := filepath.Glob("../events/sqs/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events: %v", err)
	}
	policy := sendreq.Policy{DefaultFrom: "60856"}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Records []struct{ MessageID, Body string }
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, r := range ev.Records {
			t.Run(filepath.Base(f)+"/"+strconv.Itoa(i), func(t *testing.T) {
				got := s.Validate([]byte(r.Body))
				req, err := sendreq.Decode([]byte(r.Body))
				if err == nil {
					req.ApplyDefaults(policy)
					err = req.Validate(policy)
				}
				if err == nil {
					if len(got) > 0 {
						t.Errorf("the sender accepts %s but the schema says %q", r.Body, got)
					}
					return
				}
				expressible := false
				for _, e := range apperr.All(err) {
					expressible = expressible || !unexpressible(e)
				}
				if expressible && len(got) == 0 {
					t.Errorf("the sender rejects %s (%v) but the schema accepts it", r.Body, err)
				}
			})
		}
	}
}

func TestValidate(t *testing.T) {
	req := load(t, schema.SendRequest)
	ev := load(t, schema.DeliveryEvent)
	cases := map[string]struct {
		s    *schema.Schema
		doc  string
		want []string // substrings, one per violation, in order
	}{
		"minimal request":       {req, `{"id":"a","to":"17743199144","mmsId":48211}`, nil},
		"mmsId as a string":     {req, `{"id":"a","to":"17743199144","mmsId":"048211"}`, nil},
		"mmsId zero":            {req, `{"id":"a","to":"17743199144","mmsId":"000"}`, []string{"mmsId: matches 0 of oneOf"}},
		"missing to and mmsId":  {req, `{"id":"a"}`, []string{"(document): matches none of anyOf"}}, // neither a send nor a cancel
		"to as people write it": {req, `{"id":"a","to":"+1 (774) 319-9144","mmsId":1}`, nil},
		"to of 7 digits":        {req, `{"id":"a","to":"+683 4002","mmsId":1}`, nil},
		"to of 6 digits":        {req, `{"id":"a","to":"+683 400","mmsId":1}`, []string{"to: does not match"}},
		"to with letters":       {req, `{"id":"a","to":"1774FLOWERS","mmsId":1}`, []string{"to: does not match"}},
		"to with a + inside":    {req, `{"id":"a","to":"1774+3199144","mmsId":1}`, []string{"to: does not match"}},
		"long fallback text":    {req, `{"id":"a","to":"17743199144","mmsId":1,"fallback":{"text":"` + strings.Repeat("f", 2000) + `"}}`, nil},
		"blank slide text":      {req, `{"id":"a","to":"17743199144","mmsId":1,"slides":[{"slide":1,"text":" \n "}]}`, []string{"slides[0].text: does not match"}},
		"extensionless photo":   {req, `{"id":"a","to":"17743199144","mmsId":1,"vcard":{"lastName":"A","photoUrl":"https://cdn.example.com/i/8812?w=400"}}`, nil},
		"relative photo":        {req, `{"id":"a","to":"17743199144","mmsId":1,"vcard":{"lastName":"A","photoUrl":"a.png"}}`, []string{"vcard.photoUrl: does not match"}},
		"vcard phone written":   {req, `{"id":"a","to":"17743199144","mmsId":1,"vcard":{"lastName":"A","phones":[{"number":"+1 (800) 555-0100"}]}}`, nil},
		"vcard phone letters":   {req, `{"id":"a","to":"17743199144","mmsId":1,"vcard":{"lastName":"A","phones":[{"number":"1-800-FLOWERS"}]}}`, []string{"vcard.phones[0].number: does not match"}},
		"metadata":              {req, `{"id":"a","to":"17743199144","mmsId":1,"metadata":{"orderId":"8812"},"sendAt":"2026-12-24T09:00:00-05:00","expiresAt":"2026-12-24T12:00:00Z"}`, nil},
		"metadata key":          {req, `{"id":"a","to":"17743199144","mmsId":1,"metadata":{"order id":"8812"}}`, []string{"metadata.order id: does not match"}},
		"metadata 17 values":    {req, `{"id":"a","to":"17743199144","mmsId":1,"metadata":{"a":"","b":"","c":"","d":"","e":"","f":"","g":"","h":"","i":"","j":"","k":"","l":"","m":"","n":"","o":"","p":"","q":""}}`, []string{"metadata: more than 16 properties"}},
		"sendAt without offset": {req, `{"id":"a","to":"17743199144","mmsId":1,"sendAt":"2026-12-24T09:00:00"}`, []string{"sendAt: does not match"}},
		"cancel":                {req, `{"id":"a","cancel":true}`, nil},
		"cancel and more":       {req, `{"id":"a","cancel":true,"to":"17743199144"}`, []string{"(document): matches none of anyOf"}},
		"cancel false and more": {req, `{"id":"a","cancel":false,"to":"17743199144","mmsId":1}`, nil},
		"unknown field":         {req, `{"id":"a","to":"17743199144","mmsId":1,"subjekt":"x"}`, []string{"subjekt: unknown field"}},
		"wrong type":            {req, `{"id":"a","to":17743199144,"mmsId":1}`, []string{"to: want string"}},
		"all-digit fromMask":    {req, `{"id":"a","to":"17743199144","mmsId":1,"fromMask":"123"}`, []string{"fromMask: matches none of anyOf"}},
		"slide out of range":    {req, `{"id":"a","to":"17743199144","mmsId":1,"slides":[{"slide":9,"text":"x"}]}`, []string{"slides[0].slide: above 8"}},
		"five vCard phones":     {req, `{"id":"a","to":"17743199144","mmsId":1,"vcard":{"firstName":"A","phones":[{"number":"1"},{"number":"1"},{"number":"1"},{"number":"1"},{"number":"1"}]}}`, []string{"vcard.phones: more than 4 items"}},
		"bad label":             {req, `{"id":"a","to":"17743199144","mmsId":1,"vcard":{"firstName":"A","emails":[{"id":"a@b.co","label":"office"}]}}`, []string{"vcard.emails[0].label: office is not one of"}},
		"bad data key":          {req, `{"id":"a","to":"17743199144","mmsId":1,"data":{"1x":"v"}}`, []string{"data.1x: does not match"}},
		"not an object":         {req, `[1]`, []string{"(document): want object"}},
		"expired event":         {ev, `{"id":"a","event":"expired","trackingId":"","code":"E503","status":"","sentAs":"","to":"","from":"","spid":"","handset":"","aggregatorId":"","details":"","error":"x","occurredAt":"","recordedAt":"2026-11-24T21:02:12.031Z"}`, nil},
		"unknown event kind":    {ev, `{"id":"a","event":"queued","trackingId":"","code":"","status":"","sentAs":"","to":"","from":"","spid":"","handset":"","aggregatorId":"","details":"","error":"","occurredAt":"","recordedAt":"2026-11-24T21:02:12.031Z"}`, []string{"event: queued is not one of"}},
		"event metadata":        {ev, `{"id":"a","event":"sent","trackingId":"","code":"","status":"","sentAs":"","to":"","from":"","spid":"","handset":"","aggregatorId":"","details":"","error":"","metadata":{"orderId":"8812"},"occurredAt":"","recordedAt":"2026-11-24T21:02:12.031Z"}`, nil},
		"event metadata number": {ev, `{"id":"a","event":"sent","trackingId":"","code":"","status":"","sentAs":"","to":"","from":"","spid":"","handset":"","aggregatorId":"","details":"","error":"","metadata":{"n":1},"occurredAt":"","recordedAt":"2026-11-24T21:02:12.031Z"}`, []string{"metadata.n: want string"}},
		"recordedAt not in UTC": {ev, `{"id":"a","event":"sent","trackingId":"","code":"","status":"","sentAs":"","to":"","from":"","spid":"","handset":"","aggregatorId":"","details":"","error":"","occurredAt":"","recordedAt":"2026-11-24T21:02:12-05:00"}`, []string{"recordedAt: does not match"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := c.s.Validate([]byte(c.doc))
			if len(got) != len(c.want) {
				t.Fatalf("Validate(%s) = %q, want %d violations %q", c.doc, got, len(c.want), c.want)
			}
			for i, w := range c.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("Validate(%s)[%d] = %q, want it to contain %q", c.doc, i, got[i], w)
				}
			}
		})
	}
}

// TestPublishedEventShape: an event as pkg/delivery marshals it passes the
// schema.
func TestPublishedEventShape(t *testing.T) {
	s := load(t, schema.DeliveryEvent)
	mms := int64(48211)
	for name, e := range map[string]delivery.Event{
		"accepted":      {ID: "order-1", Event: delivery.Accepted, TrackingID: "DrXAFP-Ylpc-JZL"},
		"delivered":     {ID: "order-1", Event: delivery.Delivered, Code: "N102", MMSID: &mms, OccurredAt: "2026-11-24T16:02:11-05:00"},
		"with metadata": {ID: "order-1", Event: delivery.Unconfirmed, Status: "sent", Metadata: map[string]string{"orderId": "8812", "tenant:x.y-z_1": "acme"}},
	} {
		t.Run(name, func(t *testing.T) {
			e.RecordedAt = delivery.Stamp(time.Now())
			b, _ := json.Marshal(e)
			if got := s.Validate(b); len(got) > 0 {
				t.Errorf("Validate(%s) = %q", b, got)
			}
		})
	}
}
