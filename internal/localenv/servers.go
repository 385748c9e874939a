package localenv

import (
	"context"
	"sync"
	"time"

	"github.com/mmsgate/mmsgate/internal/dynalite"
	"github.com/mmsgate/mmsgate/internal/moto"
)

// Servers lends the same moto_server process to one Env after another
// (Options.Servers): a test binary whose every test starts an Env pays
// Python's start-up, seconds on a loaded machine, once rather than once per
// test. Env.Close gives it back reset (POST /moto-api/reset), so each Env
// starts as on a fresh one; Envs open at the same time (parallel tests)
// each get a process of their own, and one that fails its reset is
// stopped, never lent again. dynalite is not lent: on one whose tables were
// deleted, the table created again answered ResourceNotFoundException now
// and then (pkg/store's tests); a fresh one starts in under a second. The zero value is ready; Close stops the idle processes
// (a test binary's TestMain).
type Servers struct {
	mu     sync.Mutex
	idle   []*lent
	closed bool
}

// lent is what an Env borrowed: moto_server (nil: not needed yet), and the
// dynalite it started, stopped when it gives moto back.
type lent struct {
	dyn  *dynalite.Server
	moto *moto.Server
}

// take returns idle processes, or none (the caller starts its own).
func (s *Servers) take() *lent {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.idle); n > 0 {
		l := s.idle[n-1]
		s.idle = s.idle[:n-1]
		return l
	}
	return &lent{}
}

// give stops l's dynalite, resets its moto_server and keeps it for the next
// Env; one that cannot be reset is stopped.
func (s *Servers) give(l *lent) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l.dyn.Close()
	l.dyn = nil
	if l.moto != nil {
		if err := l.moto.Reset(ctx); err != nil {
			l.moto.Close()
			l.moto = nil
		}
	}
	if l.dyn == nil && l.moto == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		l.close()
		return
	}
	s.idle = append(s.idle, l)
}

// Close stops the idle processes; an Env still open stops its own on
// Close.
func (s *Servers) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.idle {
		l.close()
	}
	s.idle, s.closed = nil, true
}

func (l *lent) close() {
	l.dyn.Close()
	l.moto.Close()
}
