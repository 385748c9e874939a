package sender

import (
	"slices"
	"testing"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/throttle"
)

// TestEnvVarsOnce: the send-mms function's list holds the variables of
// the packages it links that read their own (the lanes and the limit,
// receipt checks, the bus), each once: a second copy of a name would mean
// two homes for it.
func TestEnvVarsOnce(t *testing.T) {
	for _, v := range slices.Concat(throttle.EnvVars, receipt.SchedulerEnvVars, []string{delivery.BusEnv}) {
		if !slices.Contains(EnvVars, v) {
			t.Errorf("EnvVars lacks %s", v)
		}
	}
	seen := map[string]bool{}
	for _, v := range EnvVars {
		if seen[v] {
			t.Errorf("EnvVars lists %s twice", v)
		}
		seen[v] = true
	}
}
