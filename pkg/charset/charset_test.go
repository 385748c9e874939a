package charset

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestNewReader(t *testing.T) {
	tests := []struct {
		label string
		in    []byte
		want  string
		err   bool
	}{
		{"ISO-8859-1", []byte("caf\xe9 \xa3"), "café £", false},
		{"latin1", []byte("\xfc"), "ü", false},
		{"windows-1252", []byte("\x93q\x94 \x80 \xe9"), "“q” € é", false},
		{"cp1252", []byte("\x81"), "\u0081", false}, // undefined in 1252: kept as the C1 control
		{"US-ASCII", []byte("abc"), "abc", false},
		{"UTF-8", []byte("é"), "é", false},
		{"EBCDIC", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			r, err := NewReader(tt.label, bytes.NewReader(tt.in))
			if tt.err {
				if err == nil {
					t.Fatal("want an error for an unsupported charset")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(r)
			if err != nil || string(b) != tt.want {
				t.Errorf("%s(%q) = %q, %v; want %q", tt.label, tt.in, b, err, tt.want)
			}
		})
	}
}

// TestWithDecoder: encoding/xml reads through it in small and large chunks.
func TestWithDecoder(t *testing.T) {
	doc := "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><A>" + strings.Repeat("\xe9", 10000) + "</A>"
	d := xml.NewDecoder(strings.NewReader(doc))
	d.CharsetReader = NewReader
	var v struct {
		S string `xml:",chardata"`
	}
	if err := d.Decode(&v); err != nil || v.S != strings.Repeat("é", 10000) {
		t.Fatalf("decode = %d bytes, %v", len(v.S), err)
	}
}
