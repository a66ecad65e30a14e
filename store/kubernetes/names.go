package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// maxPrefix bounds the system part of a Rollback's name, leaving room for
// "-<hash>" and "-<n>" within a DNS label (63).
const maxPrefix = 40

func hash(s string, n int) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:n]
}

// namePrefix is the system's part of its Rollback names: the system name
// itself when it is a lowercase DNS label of at most maxPrefix characters,
// else a readable form of it and a hash of the name (so that Checkout and
// checkout differ).
func namePrefix(system string) string {
	if len(system) <= maxPrefix && len(validation.IsDNS1123Label(system)) == 0 {
		return system
	}
	var b strings.Builder
	for _, c := range strings.ToLower(system) {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			b.WriteRune(c)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= maxPrefix-9 {
			break
		}
	}
	readable := strings.Trim(b.String(), "-")
	if readable == "" {
		readable = "system"
	}
	return readable + "-" + hash(system, 8)
}

// rollbackName is the name of the n-th rollback of system.
func rollbackName(system string, n int64) string {
	return namePrefix(system) + "-" + strconv.FormatInt(n, 10)
}

// labelValue is s when it is a valid label value, else "h-" and a hash of
// it: a selector narrows by it, and readers compare the full value.
func labelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	return "h-" + hash(s, 40)
}

// noticeName names the notice of a dedup key: the same key, the same
// object, in every process.
func noticeName(key string) string { return "n-" + hash(key, 40) }
