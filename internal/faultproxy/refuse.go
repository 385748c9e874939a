package faultproxy

import (
	"bytes"
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// The faults below are the ones the handler tests need of SQS and Secrets
// Manager. They live here, in front of whatever serves the calls (our
// in-process stand-ins or moto), never inside a stand-in.

// RefuseSends makes the proxy, in front of an SQS, fail sends as SQS does
// when it cannot take a message: f is asked with the queue's name for each
// SendMessage (an error answers it HTTP 500 InternalError, which the SDK
// retries) and for each entry of a SendMessageBatch (an error lists that
// entry in Failed; the others go through). nil lets every send through.
func (p *Proxy) RefuseSends(f func(queue string) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = f
}

// SetDown makes every call fail as a service that is down does (HTTP 500
// with the service's internal error), until SetDown(false).
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// SetDelay holds every call for d before answering it.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// internalError answers as the service named by the X-Amz-Target prefix
// does when it fails on its side.
func internalError(w http.ResponseWriter, target, msg string) {
	var answer []byte
	switch {
	case strings.HasPrefix(target, "AmazonSQS."):
		answer, _ = json.Marshal(map[string]string{"__type": "com.amazonaws.sqs#InternalError", "message": msg})
		w.Header().Set("x-amzn-query-error", "InternalError;Receiver")
	case strings.HasPrefix(target, "secretsmanager."):
		answer, _ = json.Marshal(map[string]string{"__type": "InternalServiceError", "Message": msg})
	default:
		answer, _ = json.Marshal(map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": msg})
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(answer)), 10))
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(http.StatusInternalServerError)
	w.Write(answer)
}

// queueName is the last element of a request's QueueUrl.
func queueName(url string) string { return url[strings.LastIndexByte(url, '/')+1:] }

// refuseSend answers a SendMessage or SendMessageBatch that refuse turns
// down, whole or in part (answer is then the 2xx answer it wrote, nil when
// it wrote an error); handled=false forwards body (maybe without the
// refused entries) as usual.
func (p *Proxy) refuseSend(w http.ResponseWriter, r *http.Request, call Call, body []byte, refuse func(string) error) (forward, answer []byte, handled bool) {
	var in struct {
		QueueUrl string
		Entries  []json.RawMessage
	}
	if json.Unmarshal(body, &in) != nil {
		return body, nil, false
	}
	q := queueName(in.QueueUrl)
	if call.Op == "SendMessage" {
		if err := refuse(q); err != nil {
			internalError(w, r.Header.Get("X-Amz-Target"), err.Error())
			return nil, nil, true
		}
		return body, nil, false
	}
	var kept, failed []json.RawMessage
	for _, e := range in.Entries {
		var id struct{ Id string }
		json.Unmarshal(e, &id)
		if err := refuse(q); err != nil {
			f, _ := json.Marshal(map[string]any{"Id": id.Id, "SenderFault": false, "Code": "InternalError", "Message": err.Error()})
			failed = append(failed, f)
			continue
		}
		kept = append(kept, e)
	}
	if len(failed) == 0 {
		return body, nil, false
	}
	result := struct{ Successful, Failed []json.RawMessage }{Successful: []json.RawMessage{}, Failed: failed}
	if len(kept) > 0 {
		var req map[string]any
		json.Unmarshal(body, &req)
		req["Entries"] = kept
		fwd, _ := json.Marshal(req)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(fwd)), int64(len(fwd))
		r.Header.Set("Content-Length", strconv.Itoa(len(fwd)))
		rec := httptest.NewRecorder()
		p.rp.ServeHTTP(rec, r)
		var got struct{ Successful, Failed []json.RawMessage }
		if rec.Code >= 300 || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
			// The whole call failed: its answer stands.
			for k, vs := range rec.Header() {
				w.Header()[k] = vs
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return nil, nil, true
		}
		result.Successful = append(result.Successful, got.Successful...)
		result.Failed = append(result.Failed, got.Failed...)
	}
	out, _ := json.Marshal(result)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	return nil, out, true
}
