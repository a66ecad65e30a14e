package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary run the command line as a child process
// (REWIND_CLI_CHILD holds its arguments as JSON), so that tests can kill a
// real rewind process with SIGKILL in the middle of a rollback.
func TestMain(m *testing.M) {
	if args := os.Getenv("REWIND_CLI_CHILD"); args != "" {
		var a []string
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			os.Exit(99)
		}
		// As cmd/rewind does: SIGINT and SIGTERM end the context.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Main(ctx, a, &Env{Stdout: os.Stdout, Stderr: os.Stderr, Now: time.Now})
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}
