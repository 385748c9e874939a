// Package moto starts moto's server (`moto_server`, Python, pinned to
// 5.2.1 and installed by `make tools`), the community's AWS emulator, for
// SQS and Secrets Manager: it speaks both SQS protocols (JSON and the
// older query/XML one that Debian's AWS CLI and boto3 use), the batch
// operations, and SQS's own parameter validation.
package moto

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/mmsgate/mmsgate/internal/dynalite"
	"github.com/mmsgate/mmsgate/internal/loopback"
)

// Version is the pinned moto release.
const Version = "5.2.1"

// Server is a running moto_server.
type Server struct {
	URL string
	cmd *exec.Cmd
}

// Options of Start.
type Options struct {
	Bind string // listen address (default 127.0.0.1)
	Port int    // 0: a free port
	Log  string // file for moto's own log lines (default: discarded)
}

// Binary finds moto's server: $MOTO_SERVER, then the module's
// .bin/moto_server (written by `make tools`, the pinned version), then
// moto_server on $PATH, then python3's moto.server module. It returns the
// command line to run it.
func Binary() ([]string, error) {
	if p := os.Getenv("MOTO_SERVER"); p != "" {
		return []string{p}, nil
	}
	if root, err := dynalite.Root(); err == nil {
		if p := filepath.Join(root, ".bin", "moto_server"); executable(p) {
			return []string{p}, nil
		}
	}
	if p, err := exec.LookPath("moto_server"); err == nil {
		return []string{p}, nil
	}
	py := os.Getenv("PYTHON")
	if py == "" {
		py = "python3"
	}
	if exec.Command(py, "-c", "import moto.server, flask").Run() == nil {
		return []string{py, "-m", "moto.server"}, nil
	}
	return nil, errors.New("moto's server is not installed: run `make tools` (pip install 'moto[server]==" + Version + "')")
}

// Start runs moto_server and waits until it answers.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if o.Bind == "" {
		o.Bind = "127.0.0.1"
	}
	if o.Port == 0 {
		if o.Port, err = loopback.FreePort(); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin[0], append(bin[1:], "-H", o.Bind, "-p", strconv.Itoa(o.Port))...)
	// Its own process group, killed with us: Ctrl-C or a crash leaves no moto behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if o.Log != "" {
		os.MkdirAll(filepath.Dir(o.Log), 0o755)
		f, err := os.Create(o.Log)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	host := o.Bind
	if host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	s := &Server{URL: fmt.Sprintf("http://%s:%d", host, o.Port), cmd: cmd}
	if err := s.wait(ctx, 30*time.Second); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) wait(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/moto-api/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("moto_server did not start: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Reset clears every resource (POST /moto-api/reset).
func (s *Server) Reset(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/moto-api/reset", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// PID is moto_server's process id (tests check nothing outlives Close).
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Close stops moto_server and everything it started.
func (s *Server) Close() error {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
	return nil
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode()&0o111 != 0
}
