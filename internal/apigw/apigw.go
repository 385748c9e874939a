// Package apigw turns plain HTTP requests into API Gateway HTTP API
// (payload format 2.0) events and the function's response back into HTTP,
// as API Gateway does, so that the postback function can be driven by a
// real HTTP client (the simulator) locally.
package apigw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Invoker runs the function on one event payload.
type Invoker func(ctx context.Context, payload []byte) ([]byte, error)

// Route is one HttpApi route such as "ANY /skycore/postbacks/{token}".
type Route struct {
	Method string // "ANY" or a method
	Path   string // with {param} segments
}

// maxBody is API Gateway's payload limit.
const maxBody = 10 << 20

// Handler serves route by invoking the function; other paths get 404.
func Handler(route Route, invoke Invoker) http.Handler {
	var seq atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		params, ok := match(route.Path, r.URL.Path)
		if !ok || (route.Method != "ANY" && route.Method != r.Method) {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil || len(body) > maxBody {
			http.Error(w, `{"message":"Request Entity Too Large"}`, http.StatusRequestEntityTooLarge)
			return
		}
		ev := Event(r, route, params, body, fmt.Sprintf("local-%d", seq.Add(1)))
		payload, _ := json.Marshal(ev)
		out, err := invoke(r.Context(), payload)
		if err != nil {
			http.Error(w, `{"message":"Internal Server Error"}`, http.StatusInternalServerError)
			return
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode == 0 {
			http.Error(w, `{"message":"Internal Server Error"}`, http.StatusInternalServerError)
			return
		}
		for k, v := range resp.Headers {
			w.Header().Set(k, v)
		}
		rb := []byte(resp.Body)
		if resp.IsBase64Encoded {
			rb, _ = base64.StdEncoding.DecodeString(resp.Body)
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(rb)
	})
}

// Event builds the payload 2.0 event API Gateway would send. As on AWS,
// bodies that are not text (form posts, no content type) are base64.
func Event(r *http.Request, route Route, params map[string]string, body []byte, requestID string) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	for k, v := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	now := time.Now()
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: route.Method + " " + route.Path, RawPath: r.URL.Path, RawQueryString: r.URL.RawQuery,
		Headers: headers, PathParameters: params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID: "000000000000", APIID: "local", DomainName: r.Host, Stage: "$default", RequestID: requestID,
			RouteKey: route.Method + " " + route.Path, Time: now.UTC().Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.Method, Path: r.URL.Path, Protocol: r.Proto,
				SourceIP: strings.Split(r.RemoteAddr, ":")[0], UserAgent: r.UserAgent()},
		},
	}
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, v := range q {
			ev.QueryStringParameters[k] = strings.Join(v, ",")
		}
	}
	if len(body) > 0 {
		if textual(r.Header.Get("Content-Type")) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return ev
}

// textual is API Gateway's rule for passing a body as text.
func textual(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return strings.HasPrefix(mt, "text/") || mt == "application/json" || mt == "application/xml" || mt == "application/javascript"
}

// match binds {param} segments of pattern to path.
func match(pattern, path string) (map[string]string, bool) {
	ps, xs := strings.Split(strings.Trim(pattern, "/"), "/"), strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	params := map[string]string{}
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if xs[i] == "" {
				return nil, false
			}
			params[p[1:len(p)-1]] = xs[i]
			continue
		}
		if p != xs[i] {
			return nil, false
		}
	}
	return params, true
}
