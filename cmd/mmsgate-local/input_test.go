package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRequestBodies(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    []string
		wantErr string // substring; "" = no error
	}{
		"bare request":         {`{"id":"a","to":"17743199144","mmsId":1}`, []string{`{"id":"a","to":"17743199144","mmsId":1}`}, ""},
		"array of requests":    {`[{"id":"a"},{"id":"b"}]`, []string{`{"id":"a"}`, `{"id":"b"}`}, ""},
		"JSON lines":           {"{\"id\":\"a\"}\n{\"id\":\"b\"}\n", []string{`{"id":"a"}`, `{"id":"b"}`}, ""},
		"SQS event":            {`{"Records":[{"eventSource":"aws:sqs","body":"not JSON {"},{"body":"{\"id\":\"x\"}"}]}`, []string{"not JSON {", `{"id":"x"}`}, ""},
		"bad: empty":           {"  \n", nil, "empty file"},
		"bad: not JSON":        {"id=a", nil, "not JSON"},
		"bad: a string":        {`"hello"`, nil, "a JSON string"},
		"bad: a number":        {`42`, nil, "a JSON number"},
		"bad: array of string": {`["a"]`, nil, "array element 0 is not a JSON object"},
		"bad: empty array":     {`[]`, nil, "no requests"},
		"bad: SNS event":       {`{"Records":[{"EventSource":"aws:sns","body":"x","eventSource":"aws:sns"}]}`, nil, "want an SQS event"},
		"bad: record no body":  {`{"Records":[{"messageId":"1"}]}`, nil, "has no body"},
		"bad: array in lines":  {"{\"id\":\"a\"}\n[{\"id\":\"b\"}]", nil, "JSON value 2"},
		"bad: truncated":       {`{"id":"a"`, nil, "not JSON"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := requestBodies([]byte(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("requestBodies(%q) error = %v, want one containing %q", c.in, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("requestBodies(%q): %v", c.in, err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("requestBodies(%q) (-want +got):\n%s", c.in, diff)
			}
		})
	}
}
