package sendreq

import (
	"bytes"
	"encoding/json"
	"io"
)

// peekDeep reads the top-level "id" of a body that is well-formed JSON but
// that encoding/json refuses as a whole (nested deeper than it allows):
// json.Decoder's token stream has no depth limit and still checks the
// syntax of every token to the end. "" when the body is not one
// well-formed object or its last "id" (the one Decode would read) is not
// a string.
func peekDeep(body []byte) string {
	d := json.NewDecoder(bytes.NewReader(body))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	var id string
	for depth, isKey, key := 1, true, ""; depth > 0; {
		t, err := d.Token()
		if err != nil {
			return ""
		}
		if depth == 1 && isKey {
			if k, ok := t.(string); ok {
				key, isKey = k, false
				continue
			}
		}
		if depth == 1 && key == "id" { // the value of a top-level "id"
			id, _ = t.(string)
		}
		if dl, ok := t.(json.Delim); ok {
			if dl == '{' || dl == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 1 {
			isKey, key = true, ""
		}
	}
	if _, err := d.Token(); err != io.EOF {
		return "" // trailing data: not one object
	}
	return id
}
