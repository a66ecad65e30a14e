package cli

import (
	"context"
	"encoding/json"
	"os"
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
		os.Exit(Main(context.Background(), a, &Env{Stdout: os.Stdout, Stderr: os.Stderr, Now: time.Now}))
	}
	os.Exit(m.Run())
}
