package sdkhttp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// recorder is an HTTP client that keeps the request it is asked to send.
type recorder struct{ got *http.Request }

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.got = req
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

// sdkBody is a request as the SDK builds it for one attempt.
func sdkBody(t *testing.T) *http.Request {
	t.Helper()
	r := smithyhttp.NewStackRequest().(*smithyhttp.Request)
	r.Method, r.URL.Scheme, r.URL.Host = http.MethodPost, "http", "127.0.0.1"
	r, err := r.SetStream(bytes.NewReader([]byte(`{"QueueUrl":"q"}`)))
	if err != nil {
		t.Fatal(err)
	}
	r.ContentLength = 16
	return r.Build(context.Background())
}

// After the SDK closes a body (its response is in), net/http's last copy
// of what is left of it must end without an error; through the SDK's own
// body it fails with io.EOF, which closes the connection under the answer.
func TestClosedBodyCopiesToItsEnd(t *testing.T) {
	for name, tt := range map[string]struct {
		wrap    bool
		wantErr bool
	}{
		"the SDK's body":    {wrap: false, wantErr: true},
		"through sdkhttp's": {wrap: true, wantErr: false},
	} {
		t.Run(name, func(t *testing.T) {
			req := sdkBody(t)
			if tt.wrap {
				rec := &recorder{}
				if _, err := Wrap(rec).Do(req); err != nil {
					t.Fatal(err)
				}
				req = rec.got
			}
			if _, err := io.Copy(io.Discard, io.LimitReader(req.Body, req.ContentLength)); err != nil {
				t.Fatal(err)
			}
			req.Body.Close() // the SDK, as the response arrives
			_, err := io.Copy(io.Discard, req.Body)
			if (err != nil) != tt.wantErr {
				t.Errorf("copy of the rest after Close = %v; want error %v", err, tt.wantErr)
			}
		})
	}
}

// Against a Go server on loopback, which answers as soon as it has read
// the body, the race comes up within a few thousand calls with the SDK's
// own client; through Wrap, never. One attempt a call, so that a lost
// answer shows instead of being retried.
func TestNoAnswerLostAgainstAGoServer(t *testing.T) {
	answer := []byte(`{"QueueUrl":"` + strings.Repeat("x", 64<<10) + `"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "us-east-1", HTTPClient: Wrap(nil),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	c := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(srv.URL); o.RetryMaxAttempts = 1 })
	name := aws.String(strings.Repeat("q", 64))
	for i := range 6000 {
		if _, err := c.GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{QueueName: name}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}
