package skycore

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

const testKey = "test-api-key-0123456789abcdef"

// policy is the one the golden files were made with.
var policy = sendreq.Policy{DefaultFrom: "60856"}

// TestGolden encodes every testdata/<case>.json and compares it with
// testdata/<case>.xml. UPDATE_GOLDEN=1 rewrites the .xml files.
func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/*.json")
	if err != nil || len(cases) < 8 {
		t.Fatalf("want at least 8 golden cases, got %d (%v)", len(cases), err)
	}
	for _, in := range cases {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			got := encodeFile(t, in)
			golden := strings.TrimSuffix(in, ".json") + ".xml"
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with UPDATE_GOLDEN=1 to create): %v", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("AppendRequest(%s) mismatch (-want +got):\n%s", name, diff)
			}
			if again := encodeFile(t, in); !bytes.Equal(again, got) {
				t.Errorf("AppendRequest(%s) is not deterministic", name)
			}
			wellFormed(t, got)
		})
	}
}

func encodeFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := sendreq.Decode(b)
	if err != nil {
		t.Fatalf("Decode(%s) = %v", path, err)
	}
	r.ApplyDefaults(policy)
	if err := r.Validate(policy); err != nil {
		t.Fatalf("Validate(%s) = %v", path, err)
	}
	var buf bytes.Buffer
	AppendRequest(&buf, testKey, r)
	return buf.Bytes()
}

func wellFormed(t *testing.T, doc []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("encoded XML is not well formed: %v\n%s", err, doc)
		}
	}
}

// TestContractShape checks the contract's example against the element
// names and nesting of docs/request.md, read back with a generic parser.
func TestContractShape(t *testing.T) {
	doc := encodeFile(t, "testdata/contract-example.json")
	var tree struct {
		XMLName xml.Name `xml:"REQUEST"`
		Action  string   `xml:"ACTION"`
		Ref     string   `xml:"CLIENT_REFERENCE"`
		Texts   []struct {
			Value string `xml:"VALUE"`
			Slide int    `xml:"SLIDE"`
		} `xml:"CUSTOMTEXT"`
		Data struct {
			First   string `xml:"FIRSTNAME"`
			Barcode string `xml:"BARCODEID"`
		} `xml:"DATA"`
		VCard struct {
			First  string   `xml:"NAME>FIRSTNAME"`
			Last   string   `xml:"NAME>LASTNAME"`
			Phones []string `xml:"PHONE>NUMBER"`
			Labels []string `xml:"PHONE>LABEL"`
			Emails []string `xml:"EMAIL>ID"`
			Addrs  []string `xml:"PHYSICALADDRESS>ADDRESS"`
			Photo  string   `xml:"PHOTOURL"`
		} `xml:"DYNAMICVCARD"`
		Flags []string `xml:"DISABLEFALLBACKSMS"`
	}
	if err := xml.Unmarshal(doc, &tree); err != nil {
		t.Fatal(err)
	}
	if tree.Action != "sendSavedMMS" || tree.Ref != "order-8812-shipped" {
		t.Errorf("ACTION, CLIENT_REFERENCE = %q, %q", tree.Action, tree.Ref)
	}
	if len(tree.Texts) != 2 || tree.Texts[0].Value != "Hi Jane,\nyour parcel is on its way" || tree.Texts[1].Slide != 3 {
		t.Errorf("CUSTOMTEXT = %+v", tree.Texts)
	}
	if tree.Data.First != "Jane" || tree.Data.Barcode != "8812-XK" {
		t.Errorf("DATA = %+v", tree.Data)
	}
	v := tree.VCard
	if v.First != "Acme" || v.Last != "Support" || len(v.Phones) != 1 || v.Labels[0] != "work" ||
		v.Emails[0] != "help@acme.example" || v.Addrs[0] != "1 Main St, Springfield" || v.Photo == "" {
		t.Errorf("DYNAMICVCARD = %+v", v)
	}
	if len(tree.Flags) != 0 {
		t.Errorf("false flags must be omitted, got DISABLEFALLBACKSMS %q", tree.Flags)
	}
}

func TestEscape(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"plain":          {"abc", "abc"},
		"all five":       {`& < > " '`, "&amp; &lt; &gt; &quot; &apos;"},
		"line feed kept": {"a\nb", "a\nb"},
		"CR escaped":     {"a\r\nb", "a&#xD;\nb"},
		"tab kept":       {"a\tb", "a\tb"},
		"entity text":    {"&amp;", "&amp;amp;"},
		"unicode":        {"日本 🎉", "日本 🎉"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			escape(&b, tt.in)
			if got := b.String(); got != tt.want {
				t.Errorf("escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// What a parser reads back is the original text.
			var v struct {
				S string `xml:",chardata"`
			}
			if err := xml.Unmarshal([]byte("<X>"+b.String()+"</X>"), &v); err != nil || v.S != tt.in {
				t.Errorf("round trip of %q = %q, %v", tt.in, v.S, err)
			}
		})
	}
}
