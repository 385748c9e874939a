package store_test

import (
	"testing"

	"github.com/mmsgate/mmsgate/pkg/store"
)

// setup returns a store on memdb under -short (no Node needed) and on
// dynalite otherwise; backends gives a test both.
func setup(t *testing.T) *store.Store {
	t.Helper()
	bs := backends(t)
	return bs[len(bs)-1].st
}
