// Package secret reads the secrets that a policy names (webhook URLs,
// routing keys, passwords) from files or environment variables, and keeps
// them out of messages.
package secret

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/rewind-sre/rewind/policy"
)

// Read returns the secret s names: the content of a file without its
// surrounding white space, or an environment variable (policy.Secret.Read:
// the one rule). It is read on every call, so that a rotated secret takes
// effect without a restart. Errors name the file or the variable, never the
// value.
func Read(s policy.Secret) (string, error) { return s.Read() }

// Configured reports whether s names a file or a variable.
func Configured(s policy.Secret) bool { return s.Configured() }

// Mask is what a redacted secret reads as.
const Mask = "[redacted]"

// Redact replaces every occurrence of each non-empty secret in s.
func Redact(s string, secrets ...string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, Mask)
		}
	}
	return s
}

// Error wraps err so that its message never shows the secrets. Unwrap gives
// err for errors.Is and errors.As; callers must print the wrapper, not err.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	return &redacted{err: err, secrets: secrets}
}

type redacted struct {
	err     error
	secrets []string
}

func (r *redacted) Error() string { return Redact(r.err.Error(), r.secrets...) }
func (r *redacted) Unwrap() error { return r.err }

// SignatureHeader carries Sign's value on Rewind's signed requests: the
// notification webhook and the webhook executor.
const SignatureHeader = "X-Rewind-Signature"

// Sign returns the signature of body under key: "sha256=<hex HMAC-SHA256>".
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature against body in constant time.
func Verify(key, body []byte, signature string) error {
	hexSum, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return errors.New("signature: want sha256=<hex>")
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return errors.New("signature: not hex")
	}
	m := hmac.New(sha256.New, key)
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return errors.New("signature: mismatch")
	}
	return nil
}
