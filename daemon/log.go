package daemon

import (
	"io"
	"log/slog"
)

// NewLogger is the daemon's JSON log on w. Durations are written as Go
// duration strings ("1m43.962s"), not as integers of nanoseconds.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durations}))
}

// durations renders time.Duration values as strings.
func durations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
