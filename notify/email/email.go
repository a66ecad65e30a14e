// Package email sends each event as a multipart email (plain text and an
// HTML report) over SMTP with go-mail: STARTTLS by policy, and
// authentication only over an encrypted connection.
//
// TLS policy (Config.TLS):
//
//	mandatory      STARTTLS is required; a server without it is an error
//	               (the default, except for a loopback server)
//	opportunistic  STARTTLS when the server offers it (the default for a
//	               server on a loopback address: a local relay)
//	implicit       TLS from the first byte (SMTPS, usually port 465)
//	none           never TLS (tests, local relays only)
//
// Whatever the policy, the password is only ever sent over TLS: on a plain
// connection go-mail's auto-discovery offers no mechanism that would reveal
// it, and the attempt fails without retry.
package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/secret"
	"github.com/rewind-sre/rewind/policy"
)

// TLSPolicy says how the connection is encrypted.
type TLSPolicy string

const (
	TLSMandatory     TLSPolicy = "mandatory"
	TLSOpportunistic TLSPolicy = "opportunistic"
	TLSImplicit      TLSPolicy = "implicit"
	TLSNone          TLSPolicy = "none"
)

// DefaultTLS is the policy for a server address when none is configured:
// opportunistic for a loopback host, mandatory for every other.
func DefaultTLS(addr string) TLSPolicy {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return TLSOpportunistic
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return TLSOpportunistic
	}
	return TLSMandatory
}

// Config configures a Notifier.
type Config struct {
	Name     string // the notifier's name in the policy
	Addr     string // the SMTP server, host:port
	From     string
	To       []string
	Username string        // empty: no authentication
	Password policy.Secret // read at every delivery
	TLS      TLSPolicy     // empty: DefaultTLS(Addr)
	// TLSConfig verifies the server (default: the system roots, ServerName
	// the host of Addr).
	TLSConfig *tls.Config
	Timeout   time.Duration // of the SMTP conversation; default 30s
	Log       *slog.Logger
}

// Notifier mails events to a fixed list of recipients.
type Notifier struct {
	c    Config
	host string
	port int
}

var _ rewind.Notifier = (*Notifier)(nil)

// New checks c and returns its Notifier.
func New(c Config) (*Notifier, error) {
	host, p, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return nil, fmt.Errorf("email notifier %s: smtp must be host:port: %w", c.Name, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("email notifier %s: invalid port %q", c.Name, p)
	}
	if c.From == "" || len(c.To) == 0 {
		return nil, fmt.Errorf("email notifier %s: needs from and to", c.Name)
	}
	if c.Username != "" && !secret.Configured(c.Password) {
		return nil, fmt.Errorf("email notifier %s: a username needs a password file or environment variable", c.Name)
	}
	if c.TLS == "" {
		c.TLS = DefaultTLS(c.Addr)
	}
	switch c.TLS {
	case TLSMandatory, TLSOpportunistic, TLSImplicit, TLSNone:
	default:
		return nil, fmt.Errorf("email notifier %s: tls must be mandatory, opportunistic, implicit or none, not %q", c.Name, c.TLS)
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return &Notifier{c: c, host: host, port: port}, nil
}

// Notify mails e once; see rewind.Notifier. SMTP 2xx is success; 4xx
// replies, network errors and timeouts are retried; 5xx replies (rejected
// sender or recipient, failed authentication) and a server without the
// required STARTTLS are not.
func (n *Notifier) Notify(ctx context.Context, e rewind.Event) (bool, error) {
	var password string
	if n.c.Username != "" {
		var err error
		if password, err = secret.Read(n.c.Password); err != nil {
			return true, fmt.Errorf("email %s: password: %w", n.c.Name, err)
		}
	}
	msg, err := n.message(e)
	if err != nil {
		return false, fmt.Errorf("email %s: %w", n.c.Name, err)
	}
	client, err := mail.NewClient(n.host, n.options(ctx, password)...)
	if err != nil {
		return false, secret.Error(fmt.Errorf("email %s: %w", n.c.Name, err), password)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return retryable(err), secret.Error(fmt.Errorf("email %s (smtp %s): %w", n.c.Name, n.c.Addr, err), password)
	}
	n.c.Log.Debug("email sent", "notifier", n.c.Name, "event", e.Key(), "to", len(n.c.To))
	return false, nil
}

func (n *Notifier) options(ctx context.Context, password string) []mail.Option {
	tc := n.c.TLSConfig
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		tc = tc.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = n.host
	}
	timeout := n.c.Timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(dl)), time.Millisecond)
	}
	opts := []mail.Option{mail.WithPort(n.port), mail.WithTimeout(timeout), mail.WithTLSConfig(tc)}
	switch n.c.TLS {
	case TLSImplicit:
		// go-mail's own TLS dialer: it knows the connection is encrypted.
		opts = append(opts, mail.WithSSL())
	case TLSOpportunistic:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if n.c.TLS != TLSImplicit {
		opts = append(opts, mail.WithDialContextFunc(abortable(ctx)))
	}
	if n.c.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(n.c.Username), mail.WithPassword(password))
	}
	return opts
}

// abortable dials connections that ctx's end closes: go-mail bounds the
// SMTP conversation by its timeout only, and a shutdown must not wait for it.
func abortable(ctx context.Context) mail.DialContextFunc {
	return func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &stopConn{Conn: c, stop: context.AfterFunc(ctx, func() { c.Close() })}, nil
	}
}

type stopConn struct {
	net.Conn
	stop func() bool
}

func (c *stopConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// retryable classifies a failed SMTP delivery by the server's reply code.
func retryable(err error) bool {
	var se *mail.SendError
	if errors.As(err, &se) {
		switch code := se.ErrorCode(); {
		case se.IsTemp() || code/100 == 4:
			return true
		case code/100 == 5:
			return false
		}
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code/100 != 5
	}
	msg := err.Error()
	switch {
	case errors.Is(err, mail.ErrNoSupportedAuthDiscovered),
		strings.Contains(msg, "does not support STARTTLS"),
		strings.Contains(msg, "does not support SMTP AUTH"):
		return false // configuration: the same attempt fails again
	}
	return true // network, timeout, TLS handshake
}
