package policy

import _ "embed"

//go:embed default.yaml
var defaultPolicy []byte

// Default returns the text of the built-in policy (`rewind policy default`).
func Default() []byte { return append([]byte(nil), defaultPolicy...) }

//go:embed default-watch.yaml
var defaultWatchPolicy []byte

// DefaultWatch returns the text of the built-in rollout-watch policy
// (`rewind policy default --watch`).
func DefaultWatch() []byte { return append([]byte(nil), defaultWatchPolicy...) }
