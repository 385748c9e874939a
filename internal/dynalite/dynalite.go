// Package dynalite starts dynalite (a DynamoDB implementation from npm,
// pinned in package-lock.json) on a free loopback port, for tests and the
// local run.
package dynalite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/mmsgate/mmsgate/internal/loopback"
)

// Server is a running dynalite.
type Server struct {
	URL string
	cmd *exec.Cmd
}

// Options of StartWith.
type Options struct {
	Path string // keep the data in this folder (default: in memory)
	Bind string // listen address (default 127.0.0.1)
	Port int    // 0: a free port
}

// Start runs node_modules/dynalite (installed by `make deps`) in memory.
func Start(ctx context.Context) (*Server, error) { return StartWith(ctx, Options{}) }

// StartWith runs dynalite as o says.
func StartWith(ctx context.Context, o Options) (*Server, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	cli := filepath.Join(root, "node_modules", "dynalite", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		return nil, fmt.Errorf("dynalite is not installed (%s missing): run `make deps` (npm ci)", cli)
	}
	port := o.Port
	if port == 0 {
		if port, err = loopback.FreePort(); err != nil {
			return nil, err
		}
	}
	if o.Bind == "" {
		o.Bind = "127.0.0.1"
	}
	args := []string{cli, "--host", o.Bind, "--port", strconv.Itoa(port),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"}
	if o.Path != "" {
		if err := os.MkdirAll(o.Path, 0o755); err != nil {
			return nil, err
		}
		args = append(args, "--path", o.Path)
	}
	cmd := exec.Command("node", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dynalite: %w", err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	if err := loopback.Wait(ctx, fmt.Sprintf("127.0.0.1:%d", port), 15*time.Second); err != nil {
		s.Close()
		return nil, fmt.Errorf("dynalite did not start: %w", err)
	}
	return s, nil
}

// Close stops dynalite.
func (s *Server) Close() error {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
	return nil
}

// Root finds the module root (the folder with go.mod) above the working
// directory.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}
