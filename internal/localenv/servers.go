package localenv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mmsgate/mmsgate/internal/dynalite"
	"github.com/mmsgate/mmsgate/internal/moto"
)

// Servers lends the same dynalite and moto_server processes to one Env
// after another (Options.Servers): a test binary whose every test starts an
// Env pays Node's and Python's start-up, seconds each on a loaded machine,
// once rather than once per test. Env.Close gives them back emptied (every
// table deleted, moto reset), so each Env starts as on fresh servers; Envs
// open at the same time (parallel tests) each get processes of their own,
// and a process that fails its reset is stopped, never lent again. The zero
// value is ready; Close stops the idle processes (a test binary's TestMain).
type Servers struct {
	mu     sync.Mutex
	idle   []*lent
	closed bool
}

// lent is one pair of processes; either may be nil (not needed yet).
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

// give empties l's processes and keeps them for the next Env; a process
// that cannot be emptied is stopped.
func (s *Servers) give(cfg aws.Config, l *lent) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if l.dyn != nil {
		if err := emptyDynalite(ctx, cfg, l.dyn.URL); err != nil {
			l.dyn.Close()
			l.dyn = nil
		}
	}
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

// emptyDynalite deletes every table and waits until they are gone: a
// CreateTable of the same name would otherwise find the old one (and its
// items) still there.
func emptyDynalite(ctx context.Context, cfg aws.Config, url string) error {
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(url) })
	for {
		out, err := db.ListTables(ctx, &dynamodb.ListTablesInput{})
		if err != nil {
			return err
		}
		if len(out.TableNames) == 0 {
			return nil
		}
		for _, name := range out.TableNames {
			_, err := db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
			if err != nil && !deleting(err) {
				return fmt.Errorf("delete table %s: %w", name, err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// deleting says a DeleteTable found the table already going.
func deleting(err error) bool {
	var inUse interface{ ErrorCode() string }
	return errors.As(err, &inUse) && (inUse.ErrorCode() == "ResourceInUseException" || inUse.ErrorCode() == "ResourceNotFoundException")
}
