package policy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// urlKind is what an endpoint URL of a policy is for; the rules differ
// only in what they allow after the host.
type urlKind int

const (
	// urlBase: a base URL that paths are appended to (prometheus.url):
	// no query, no fragment.
	urlBase urlKind = iota
	// urlEndpoint: a URL called as it is (webhooks, probes): a query is
	// allowed, a fragment is not.
	urlEndpoint
)

// checkURL is the one rule for every http(s) URL a policy names: the
// scheme http or https, a host, no credentials (secrets come from files or
// environment variables, never from the policy: how to give them is
// `secrets`), no fragment, and for a base URL no query. The messages never
// repeat the URL, which may hold a password.
func checkURL(raw string, kind urlKind, secrets string) error {
	if raw == "" {
		return errors.New("required")
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return errors.New("must be an http:// or https:// URL without spaces")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("must be an http:// or https:// URL (it does not parse)")
	case u.User != nil:
		return errors.New("must not contain credentials (user:password@); " + secrets)
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http:// or https:// URL")
	case u.Host == "":
		return errors.New("must name a host")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("must not have a fragment (#...)")
	case kind == urlBase && (u.RawQuery != "" || u.ForceQuery):
		return errors.New("must not have a query (?...): it is the base that /api/v1/... is appended to")
	}
	return nil
}

// CheckURL is the rule for a Prometheus base URL, wherever it comes from
// (prometheus.url, backtest --prometheus).
func (p Prometheus) CheckURL() error {
	return checkURL(p.URL, urlBase, "use basicAuth or bearerTokenFile")
}

// checkHostPort is the rule for an SMTP server address: host:port, the
// port a number from 1 to 65535.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return errors.New("must be host:port, e.g. smtp.example.com:587")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: must be a number from 1 to 65535", port)
	}
	return nil
}
