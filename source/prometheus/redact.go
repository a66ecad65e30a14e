package prometheus

import (
	"encoding/base64"
	"errors"
	"os"
	"strings"
)

// redactor removes credentials from server-supplied text in errors. The
// transport reads the secrets, so this package never holds them; but a
// misbehaving server or proxy may echo the Authorization header in an error
// body, and error strings end up in logs, the API and evidence bundles.
type redactor struct {
	tokenFile    string
	username     string
	passwordFile string
}

const redacted = "[REDACTED]"

// redact rewrites the reason of err (an *Error) in place and returns err.
func (r redactor) redact(err error) error {
	var e *Error
	if !errors.As(err, &e) || (r.tokenFile == "" && r.passwordFile == "") {
		return err
	}
	var secrets []string
	if token := readSecret(r.tokenFile); token != "" {
		secrets = append(secrets, token)
	}
	if password := readSecret(r.passwordFile); password != "" {
		secrets = append(secrets, password,
			base64.StdEncoding.EncodeToString([]byte(r.username+":"+password)))
	}
	for _, s := range secrets {
		e.Reason = strings.ReplaceAll(e.Reason, s, redacted)
	}
	return err
}

// readSecret reads a secret file as the transport does (trimmed); "" when
// there is no file or it cannot be read.
func readSecret(path string) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
