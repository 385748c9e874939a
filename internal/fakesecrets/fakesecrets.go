// Package fakesecrets is a Secrets Manager speaking the AWS JSON 1.1
// protocol for GetSecretValue, so the real SDK client runs under
// `go test -short`, which may start no service: moto, a Python server,
// serves Secrets Manager everywhere else (localenv), and pkg/secret's
// tests run against both. Faults (down, slow) and call counts come from
// the fault proxy in front of it, as for any stand-in.
package fakesecrets

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Server holds secrets by name.
type Server struct {
	mu      sync.Mutex
	secrets map[string]string
	srv     *http.Server
	url     string
}

// New returns a fake with no secrets.
func New() *Server { return &Server{secrets: map[string]string{}} }

// Put sets a secret's SecretString.
func (s *Server) Put(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name] = value
}

// Start serves on addr ("127.0.0.1:0" picks a free port) and returns the URL.
func (s *Server) Start(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.url = "http://" + l.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(l)
	return s.url, nil
}

// Close stops the server.
func (s *Server) Close() error {
	if s.srv != nil {
		return s.srv.Close()
	}
	return nil
}

// ServeHTTP answers secretsmanager.GetSecretValue.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
		fail(w, "InvalidRequestException", "fakesecrets implements GetSecretValue only", 400)
		return
	}
	var in struct{ SecretId string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
		fail(w, "InvalidRequestException", err.Error(), 400)
		return
	}
	s.mu.Lock()
	v, ok := s.secrets[in.SecretId]
	s.mu.Unlock()
	switch {
	case !ok:
		fail(w, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.", 400)
	default:
		b, _ := json.Marshal(map[string]any{
			"ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:" + in.SecretId + "-AbCdEf", "Name": in.SecretId,
			"SecretString": v, "VersionId": "v1", "VersionStages": []string{"AWSCURRENT"}, "CreatedDate": float64(time.Now().Unix()),
		})
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	}
}

func fail(w http.ResponseWriter, code, msg string, status int) {
	b, _ := json.Marshal(map[string]string{"__type": code, "Message": msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	w.Write(b)
}
