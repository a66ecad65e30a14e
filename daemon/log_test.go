package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLogDurations: durations in the daemon's log are Go duration
// strings, not integers of nanoseconds, at the top level and in groups.
func TestLogDurations(t *testing.T) {
	var b bytes.Buffer
	log := NewLogger(&b, slog.LevelInfo)
	log.Info("rolled back", "took", 103962*time.Millisecond, slog.Group("step", "took", 1500*time.Microsecond))
	out := b.String()
	if !strings.Contains(out, `"took":"1m43.962s"`) || !strings.Contains(out, `"step":{"took":"1.5ms"}`) {
		t.Fatalf("durations not as strings: %s", out)
	}
}
