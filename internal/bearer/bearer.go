// Package bearer is the one check of Rewind's API token (RFC 6750 bearer
// tokens) that every handler uses: the API and the Alertmanager receiver.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Token is the API's bearer token, kept as its hash.
type Token struct {
	set  bool
	hash [32]byte
}

// New returns the token; an empty token allows no request.
func New(token []byte) Token {
	return Token{set: len(token) > 0, hash: sha256.Sum256(token)}
}

// Allows reports whether r carries the token as "Authorization: Bearer
// <token>". The scheme is case-insensitive, as every HTTP authentication
// scheme is (RFC 9110 §11.1), so "bearer" and "BEARER" are the same scheme
// everywhere in the API. The token is compared in constant time (of its
// hash).
func (t Token) Allows(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !t.set || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(h[:], t.hash[:]) == 1
}
