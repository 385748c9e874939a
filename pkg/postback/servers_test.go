package postback

import (
	"os"
	"testing"

	"github.com/mmsgate/mmsgate/internal/localenv"
)

// servers lends one moto_server to each test's localenv in turn, reset in
// between: its start-up, seconds on a loaded machine, is paid once per
// package rather than once per test (dynalite still starts per test).
var servers localenv.Servers

func TestMain(m *testing.M) {
	code := m.Run()
	servers.Close()
	os.Exit(code)
}
