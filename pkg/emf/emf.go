// Package emf writes CloudWatch metrics as Embedded Metric Format log
// lines: CloudWatch extracts them from the function's logs, so recording a
// metric costs no API call.
package emf

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Units.
const (
	Count          = "Count"
	Milliseconds   = "Milliseconds"
	CountPerSecond = "Count/Second"
)

// Metrics writes EMF lines under one namespace with fixed dimensions.
type Metrics struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	dims      map[string]string
	now       func() time.Time
}

// New returns a writer of EMF lines; dims (for example Function) are on
// every metric.
func New(w io.Writer, namespace string, dims map[string]string) *Metrics {
	return &Metrics{w: w, namespace: namespace, dims: dims, now: time.Now}
}

// Put writes one metric with value v; extra adds dimensions (Code=N101).
func (m *Metrics) Put(name, unit string, v float64, extra ...string) {
	if m == nil {
		return
	}
	doc := make(map[string]any, len(m.dims)+len(extra)/2+2)
	keys := make([]string, 0, len(m.dims)+len(extra)/2)
	for k, val := range m.dims {
		doc[k] = val
		keys = append(keys, k)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		doc[extra[i]] = extra[i+1]
		keys = append(keys, extra[i])
	}
	doc[name] = v
	doc["_aws"] = map[string]any{
		"Timestamp": m.now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  m.namespace,
			"Dimensions": [][]string{keys},
			"Metrics":    []any{map[string]string{"Name": name, "Unit": unit}},
		}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.w.Write(append(b, '\n'))
}

// Count adds 1 to name.
func (m *Metrics) Count(name string, extra ...string) { m.Put(name, Count, 1, extra...) }
