// Package sdkhttp is the HTTP client of mmsgate's AWS SDK clients: the
// SDK's own, with a fix for a race that loses answers.
//
// The SDK wraps each request body in a reader whose WriteTo answers io.EOF
// once the SDK has closed it, and it closes it as soon as the response is
// in. After sending a body of known length, net/http copies what is left of
// it to check that nothing is, and io.Copy prefers WriteTo. When the
// response came first, that io.EOF reads as a failed body: the transport
// closes the connection, and the response body still being read dies with
// "use of closed network connection". The SDK retries that by default, so
// a write that took effect is made twice and a receive's messages stay
// hidden until their visibility ends. Without WriteTo the late read is a
// plain end of body.
package sdkhttp

import (
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Wrap is next (nil: the SDK's default client) sending request bodies that
// have no WriteTo. Wrap a loaded config's client, after config has given it
// what it needs (AWS_CA_BUNDLE's roots need the SDK's buildable client):
//
//	cfg.HTTPClient = sdkhttp.Wrap(cfg.HTTPClient)
func Wrap(next aws.HTTPClient) aws.HTTPClient {
	if next == nil {
		next = awshttp.NewBuildableClient()
	}
	return client{next: next}
}

type client struct{ next aws.HTTPClient }

// Do sends r, its body (built by the SDK for this attempt) without WriteTo.
func (c client) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = readCloser{r.Body}
	}
	return c.next.Do(r)
}

// readCloser is a body with Read and Close only.
type readCloser struct{ io.ReadCloser }
