package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
)

// waitWriter passes the functions' log lines on to w and, for each line
// that says why an id is not finished yet (held by another delivery, in
// doubt, retrying after a transient failure), prints it to say, so that
// `make run` never pauses silently.
type waitWriter struct {
	w   io.Writer
	say func(format string, a ...any)

	mu   sync.Mutex
	part []byte
}

func (ww *waitWriter) Write(p []byte) (int, error) {
	ww.mu.Lock()
	defer ww.mu.Unlock()
	n, err := ww.w.Write(p)
	ww.part = append(ww.part, p...)
	for {
		i := bytes.IndexByte(ww.part, '\n')
		if i < 0 {
			break
		}
		ww.line(ww.part[:i])
		ww.part = ww.part[i+1:]
	}
	return n, err
}

func (ww *waitWriter) line(b []byte) {
	if len(b) == 0 || b[0] != '{' {
		return
	}
	var l struct {
		Message string `json:"message"`
		ID      string `json:"id"`
		Code    string `json:"code"`
		Err     string `json:"err"`
	}
	if json.Unmarshal(b, &l) != nil || l.Message == "" {
		return
	}
	switch {
	case strings.Contains(l.Message, "another delivery holds it"), strings.Contains(l.Message, "in doubt"):
		ww.say("[wait] %s", l.Message)
	case l.Message == "retrying" && l.ID != "":
		ww.say("[wait] %s: %s, retrying after a back-off (%s)", l.ID, l.Code, truncate(l.Err, 90))
	case strings.Contains(l.Message, "deadline near"):
		ww.say("[wait] a record was left for redelivery: the invocation's deadline was near")
	}
}
