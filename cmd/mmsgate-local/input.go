package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/stack"
)

// requestBodies reads the send requests in one file, which may hold an SQS
// event ({"Records": [...]}, as in events/sqs), one bare request (a JSON
// object), a JSON array of requests, or JSON lines (one request per line).
// Anything else is an error that says what was expected.
func requestBodies(b []byte) ([]string, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("empty file: want an SQS event, a request, a JSON array of requests or JSON lines")
	}
	var values []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not JSON (%v): want an SQS event, a request, a JSON array of requests or JSON lines", err)
		}
		values = append(values, v)
	}
	var out []string
	for i, v := range values {
		got, err := fromValue(v, len(values) == 1)
		if err != nil {
			if len(values) > 1 {
				return nil, fmt.Errorf("JSON value %d: %w", i+1, err)
			}
			return nil, err
		}
		out = append(out, got...)
	}
	if len(out) == 0 {
		return nil, errors.New("no requests in it")
	}
	return out, nil
}

func fromValue(v json.RawMessage, only bool) ([]string, error) {
	switch v[0] {
	case '[':
		if !only {
			return nil, errors.New("a JSON array among JSON lines: want one request per line")
		}
		var list []json.RawMessage
		json.Unmarshal(v, &list)
		var out []string
		for i, r := range list {
			if len(r) == 0 || r[0] != '{' {
				return nil, fmt.Errorf("array element %d is not a JSON object (a request)", i)
			}
			out = append(out, string(r))
		}
		return out, nil
	case '{':
		var probe map[string]json.RawMessage
		json.Unmarshal(v, &probe)
		if _, ok := probe["Records"]; ok {
			var ev struct {
				Records []struct {
					Body        *string `json:"body"`
					EventSource string  `json:"eventSource"`
				}
			}
			if err := json.Unmarshal(v, &ev); err != nil {
				return nil, fmt.Errorf("the Records are not an SQS event's: %v", err)
			}
			var out []string
			for i, r := range ev.Records {
				if r.Body == nil {
					return nil, fmt.Errorf("record %d has no body: not an SQS event", i)
				}
				if r.EventSource != "" && r.EventSource != "aws:sqs" {
					return nil, fmt.Errorf("record %d comes from %s: want an SQS event", i, r.EventSource)
				}
				out = append(out, *r.Body)
			}
			return out, nil
		}
		return []string{string(v)}, nil
	}
	return nil, fmt.Errorf("a JSON %s: want an SQS event, a request object, a JSON array of requests or JSON lines", kind(v[0]))
}

func kind(c byte) string {
	switch c {
	case '"':
		return "string"
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	}
	return "number"
}

// deadLetter is a message found on the send DLQ.
type deadLetter struct{ body, reason string }

func deadLetters(s *stack.Stack) ([]deadLetter, error) {
	var out []deadLetter
	msgs, err := s.Env.Peek(context.Background(), localenv.SendDLQ)
	for _, m := range msgs {
		r := ""
		if a, ok := m.MessageAttributes["error"]; ok {
			r = aws.ToString(a.StringValue)
		}
		out = append(out, deadLetter{aws.ToString(m.Body), r})
	}
	return out, err
}
