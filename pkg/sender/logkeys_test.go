package sender

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/internal/sim"
)

// dupKeys returns the keys that one JSON object (at any depth) repeats.
func dupKeys(line []byte) ([]string, error) {
	d := json.NewDecoder(bytes.NewReader(line))
	var dups []string
	type obj struct {
		seen  map[string]bool
		isKey bool
	}
	var stack []*obj
	for {
		t, err := d.Token()
		if err != nil {
			if err.Error() == "EOF" {
				return dups, nil
			}
			return dups, err
		}
		var top *obj
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := t.(type) {
		case json.Delim:
			switch v {
			case '{':
				if top != nil {
					top.isKey = true
				}
				stack = append(stack, &obj{seen: map[string]bool{}, isKey: true})
				continue
			case '[':
				if top != nil {
					top.isKey = true
				}
				stack = append(stack, nil)
				continue
			default:
				stack = stack[:len(stack)-1]
				continue
			}
		case string:
			if top != nil && top.isKey && d.More() {
				// a key: d.Token hands keys and values alike
				if top.seen[v] {
					dups = append(dups, v)
				}
				top.seen[v] = true
				top.isKey = false
				continue
			}
		}
		if top != nil {
			top.isKey = true
		}
	}
}

// TestLogLinesRepeatNoKey: no log line of the sender names a key twice
// (latencyMs was written by both the call and the outcome). The scenarios
// cover every outcome a line is written for.
func TestLogLinesRepeatNoKey(t *testing.T) {
	hs := newHarness(t, func(c *sim.Config) {
		c.Faults = append(c.Faults, sim.Fault{Kind: "hang", Count: 1, Match: sim.Match{ToSuffix: "9155"}})
	}, func(c *Config) {
		c.InDoubtWindow, c.CallTimeout, c.SuppressCodes = time.Hour, 300*time.Millisecond, []string{"E111"}
	})
	bodies := []string{
		`{"id":"k-ok","to":"17743199144","mmsId":1000}`,
		`{"id":"k-e111","to":"17743199144","from":"12345","mmsId":1000}`,
		`{"id":"k-e503","to":"17743190503","mmsId":1000}`,
		`{"id":"k-hang","to":"17743199155","mmsId":1000}`,
		`{"id":"k-bad","to":"17743199144","mmsId":1000,"subjet":"x"}`,
		`{"id":"` + strings.Repeat("z", 65) + `","to":"17743199144","mmsId":1000}`,
		`not json`,
		`{"id":"k-sup","to":"17743199144","from":"12345","mmsId":1000}`,
	}
	for i, b := range bodies {
		hs.invoke(t, context.Background(), record(t, fmt.Sprint("m", i), b, time.Now()))
	}
	hs.invoke(t, context.Background(), record(t, "m0", bodies[0], time.Now())) // a duplicate
	hs.invoke(t, context.Background(), record(t, "m3", bodies[3], time.Now())) // in doubt
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(hs.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		lines++
		dups, err := dupKeys(line)
		if err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if len(dups) > 0 {
			t.Errorf("keys %v repeated in %.400s", dups, line)
		}
	}
	if lines < 10 {
		t.Errorf("only %d log lines: the scenarios did not run", lines)
	}
}
