package skycore

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseInbound(t *testing.T) {
	file := func(name string) string {
		b, err := os.ReadFile("testdata/inbound/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name    string
		doc     string
		want    *Inbound
		wantErr error
	}{
		{name: "SMS MO", doc: file("sms-mo.xml"), want: &Inbound{Origin: "SMS_MO", Code: "N211", From: "17743199144", To: "60856",
			Text: "STOP", Received: "2011-09-28T17:31:02-04:00", TransactionID: "511XG-02294-192SA-482H8"}},
		{name: "MMS MO", doc: file("mms-mo.xml"), want: &Inbound{Origin: "MMS_MO", Code: "N401", From: "17743199144", To: "60856",
			Keyword: "all", Subject: "Photo of the receipt", TrackingID: "MMS_MO_iLnCRrL6", SPID: "0001470",
			Timestamp: "2026-11-24T16:02:11-05:00",
			Files:     []string{"https://content.skycore.com/mo/iLnCRrL6/1.txt", "https://content.skycore.com/mo/iLnCRrL6/2.jpg"}}},
		{name: "ISO-8859-1, FROM with + and separators", doc: file("sms-mo-iso-8859-1.xml"), want: &Inbound{Origin: "SMS_MO", Code: "N211",
			From: "17743199144", To: "60856", Text: "Arrêt, merci", Received: "2026-11-24T16:02:11-05:00", TransactionID: "T-latin"}},
		{name: "CODE only", doc: `<POSTBACK><CODE>n211</CODE><FROM>1</FROM><TO>2</TO><TEXT> hi </TEXT></POSTBACK>`,
			want: &Inbound{Origin: "SMS_MO", Code: "N211", From: "1", To: "2", Text: "hi"}},
		{name: "ORIGIN only", doc: `<POSTBACK><ORIGIN>mms_mo</ORIGIN><FROM>1</FROM><TO>2</TO><CONTENT/></POSTBACK>`,
			want: &Inbound{Origin: "MMS_MO", Code: "N401", From: "1", To: "2"}},
		{name: "elements in any order, unknown ones, empty FILE", doc: `<POSTBACK x="1"><TRACKINGID>T</TRACKINGID><NEW>x</NEW><CONTENT><FILE> </FILE><OTHER>u</OTHER><FILE>u2</FILE></CONTENT><TO>2</TO><FROM>1</FROM><CODE>N401</CODE></POSTBACK>`,
			want: &Inbound{Origin: "MMS_MO", Code: "N401", From: "1", To: "2", TrackingID: "T", Files: []string{"u2"}}},
		{name: "FROM not a phone number kept as given", doc: `<POSTBACK><CODE>N211</CODE><FROM>user@example.com</FROM><TO>60856</TO></POSTBACK>`,
			want: &Inbound{Origin: "SMS_MO", Code: "N211", From: "user@example.com", To: "60856"}},
		{name: "escaped text", doc: `<POSTBACK><CODE>N211</CODE><FROM>1</FROM><TO>2</TO><TEXT>a &amp; b &lt;3 &#233;</TEXT></POSTBACK>`,
			want: &Inbound{Origin: "SMS_MO", Code: "N211", From: "1", To: "2", Text: "a & b <3 é"}},

		{name: "a delivery receipt", doc: `<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N102</CODE><TRACKINGID>T</TRACKINGID></POSTBACK>`, wantErr: ErrNotInbound},
		{name: "not a POSTBACK", doc: `<RESPONSE><CODE>N211</CODE></RESPONSE>`, wantErr: ErrNotInbound},
		{name: "not XML", doc: `STOP`, wantErr: ErrNotInbound},
		{name: "empty", doc: ``, wantErr: ErrNotInbound},
		{name: "DOCTYPE", doc: `<!DOCTYPE x [<!ENTITY a "b">]><POSTBACK><CODE>N211</CODE><FROM>1</FROM><TO>2</TO></POSTBACK>`, wantErr: ErrNotInbound},
		{name: "undefined entity", doc: `<POSTBACK><CODE>N211</CODE><FROM>1</FROM><TO>2</TO><TEXT>&lol;</TEXT></POSTBACK>`, wantErr: ErrNotInbound},
		{name: "two roots", doc: `<POSTBACK><CODE>N211</CODE></POSTBACK><POSTBACK/>`, wantErr: ErrNotInbound},
		{name: "deep", doc: strings.Repeat("<a>", 20) + strings.Repeat("</a>", 20), wantErr: ErrNotInbound},
		{name: "ORIGIN and CODE disagree", doc: `<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N401</CODE><FROM>1</FROM><TO>2</TO></POSTBACK>`, wantErr: ErrMalformedInbound},
		{name: "MO origin with a delivery code", doc: `<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N102</CODE><FROM>1</FROM><TO>2</TO></POSTBACK>`, wantErr: ErrMalformedInbound},
		{name: "MO code with a delivery origin", doc: `<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N211</CODE><FROM>1</FROM><TO>2</TO></POSTBACK>`, wantErr: ErrMalformedInbound},
		{name: "no FROM", doc: `<POSTBACK><CODE>N211</CODE><TO>2</TO><TEXT>STOP</TEXT></POSTBACK>`, wantErr: ErrMalformedInbound},
		{name: "no TO", doc: `<POSTBACK><CODE>N211</CODE><FROM>1</FROM><TEXT>STOP</TEXT></POSTBACK>`, wantErr: ErrMalformedInbound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseInbound([]byte(tt.doc))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseInbound = %+v, %v; want %v", got, err, tt.wantErr)
				}
				if IsInbound([]byte(tt.doc)) != errors.Is(tt.wantErr, ErrMalformedInbound) {
					t.Errorf("IsInbound = %v with %v", !errors.Is(tt.wantErr, ErrMalformedInbound), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseInbound (-want +got):\n%s", diff)
			}
			if !IsInbound([]byte(tt.doc)) {
				t.Error("IsInbound = false")
			}
		})
	}
}

func TestInboundAccessors(t *testing.T) {
	sms := &Inbound{Code: CodeSMSMO, Text: "STOP", Subject: "x", TransactionID: "tx", TrackingID: "tr", Received: "2011-09-28T17:31:02-04:00", Timestamp: "ts"}
	mms := &Inbound{Code: CodeMMSMO, Text: "x", Subject: "Hello", TransactionID: "tx", TrackingID: "tr", Received: "r", Timestamp: "2026-11-24 16:02:11"}
	if sms.MessageID() != "tx" || sms.Body() != "STOP" || sms.OccurredAt() != sms.Received {
		t.Errorf("SMS accessors: %q %q %q", sms.MessageID(), sms.Body(), sms.OccurredAt())
	}
	if mms.MessageID() != "tr" || mms.Body() != "Hello" || mms.OccurredAt() != mms.Timestamp {
		t.Errorf("MMS accessors: %q %q %q", mms.MessageID(), mms.Body(), mms.OccurredAt())
	}
	if got, ok := sms.Time(); !ok || !got.Equal(time.Date(2011, 9, 28, 21, 31, 2, 0, time.UTC)) {
		t.Errorf("SMS Time = %v, %v", got, ok)
	}
	if got, ok := mms.Time(); !ok || !got.Equal(time.Date(2026, 11, 24, 16, 2, 11, 0, time.UTC)) {
		t.Errorf("MMS Time = %v, %v", got, ok)
	}
	if _, ok := (&Inbound{Code: CodeSMSMO, Received: "yesterday"}).Time(); ok {
		t.Error("Time parsed \"yesterday\"")
	}
}

func TestInboundDedupKey(t *testing.T) {
	a := &Inbound{Code: CodeSMSMO, From: "1", To: "2", Text: "STOP", TransactionID: "tx-1"}
	if got := a.DedupKey(100); got != "N211:tx-1" {
		t.Errorf("DedupKey = %q", got)
	}
	// The same id from MMS is another message.
	if b := (&Inbound{Code: CodeMMSMO, TrackingID: "tx-1"}); b.DedupKey(100) == a.DedupKey(100) {
		t.Error("an SMS and an MMS with the same id share a key")
	}
	// No id: the fields decide, so a retry is the same key and another text is not.
	noID := func(text string) *Inbound {
		return &Inbound{Code: CodeSMSMO, From: "1", To: "2", Text: text, Received: "r"}
	}
	first, retry := noID("STOP"), noID("STOP")
	if first.DedupKey(100) != retry.DedupKey(100) || first.DedupKey(100) == noID("START").DedupKey(100) {
		t.Error("hashed keys do not follow the fields")
	}
	// Field boundaries count: ("ab","c") is not ("a","bc").
	x := &Inbound{Code: CodeSMSMO, From: "ab", To: "c"}
	y := &Inbound{Code: CodeSMSMO, From: "a", To: "bc"}
	if x.DedupKey(100) == y.DedupKey(100) {
		t.Error("hashed key ignores field boundaries")
	}
	long := &Inbound{Code: CodeSMSMO, TransactionID: strings.Repeat("x", 200)}
	if k := long.DedupKey(100); len(k) > 100 || !strings.HasPrefix(k, "N211:h:") {
		t.Errorf("a too long id gives %q", k)
	}
}

func TestInboundMarshalRoundTrip(t *testing.T) {
	for _, m := range []*Inbound{
		{Origin: OriginSMSMO, Code: CodeSMSMO, From: "17743199144", To: "60856", Text: "STOP <now> & \"then\"", Received: "2026-11-24T16:02:11-05:00", TransactionID: "T1"},
		{Origin: OriginMMSMO, Code: CodeMMSMO, From: "17743199144", To: "60856", Keyword: "all", Subject: "Hi", TrackingID: "MMS_MO_1", SPID: "1",
			Timestamp: "2026-11-24T16:02:11-05:00", Files: []string{"https://x/1?a=1&b=2", "https://x/2"}},
	} {
		got, err := ParseInbound(m.Marshal())
		if err != nil {
			t.Fatalf("%v\n%s", err, m.Marshal())
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

// FuzzParseInbound: no panic; a parsed message has FROM, TO and a
// consistent ORIGIN/CODE, and survives a round trip through Marshal.
func FuzzParseInbound(f *testing.F) {
	for _, name := range []string{"sms-mo.xml", "mms-mo.xml", "sms-mo-iso-8859-1.xml"} {
		b, err := os.ReadFile("testdata/inbound/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`<POSTBACK><CODE>N211</CODE><FROM>1</FROM><TO>2</TO></POSTBACK>`))
	f.Add([]byte(`<POSTBACK><ORIGIN>MMS_MO</ORIGIN><FROM>1</FROM><TO>2</TO><CONTENT><FILE>u</FILE></CONTENT></POSTBACK>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		m, err := ParseInbound(doc)
		if err != nil {
			if !errors.Is(err, ErrNotInbound) && !errors.Is(err, ErrMalformedInbound) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if m.From == "" || m.To == "" {
			t.Fatalf("parsed without FROM or TO: %+v", m)
		}
		if !(m.Code == CodeSMSMO && m.Origin == OriginSMSMO || m.Code == CodeMMSMO && m.Origin == OriginMMSMO) {
			t.Fatalf("ORIGIN %q with CODE %q", m.Origin, m.Code)
		}
		// Marshal writes only the elements of its kind.
		want := *m
		if m.SMS() {
			want.Keyword, want.Subject, want.TrackingID, want.SPID, want.Timestamp, want.Files = "", "", "", "", "", nil
		} else {
			want.Text, want.Received, want.TransactionID = "", "", ""
		}
		again, err := ParseInbound(m.Marshal())
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v\n%s", err, m.Marshal())
		}
		if diff := cmp.Diff(&want, again); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
	})
}

// TestLongInboundText: the longest concatenated SMS, in 4-byte characters,
// is kept whole.
func TestLongInboundText(t *testing.T) {
	text := strings.Repeat("😀", 1600)
	m, err := ParseInbound((&Inbound{Origin: OriginSMSMO, Code: CodeSMSMO, From: "1", To: "2", Text: text}).Marshal())
	if err != nil || m.Text != text {
		t.Fatalf("ParseInbound kept %d of %d bytes (%v)", len(m.Text), len(text), err)
	}
}
