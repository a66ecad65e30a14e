package policy

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Read returns the secret: the content of its file without surrounding
// white space, or its environment variable. It is the one rule for every
// secret a policy names (read on every use, so that a rotated secret takes
// effect without a restart); errors name the file or the variable, never
// the value.
func (s Secret) Read() (string, error) {
	switch {
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("reading the secret file: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("the secret file %s is empty", s.File)
		}
		return v, nil
	case s.Env != "":
		v := strings.TrimSpace(os.Getenv(s.Env))
		if v == "" {
			return "", fmt.Errorf("the environment variable %s that holds the secret is empty or unset", s.Env)
		}
		return v, nil
	}
	return "", errors.New("no secret configured (give a file or an environment variable)")
}

// Configured reports whether s names a file or a variable.
func (s Secret) Configured() bool { return s.File != "" || s.Env != "" }

// Scope selects the parts of a policy a command uses, for
// CheckEnvironment.
type Scope struct {
	Metrics  bool // prometheus sections: credential and CA files
	Rollback bool // executors: kubeconfig files, exec programs, webhook secrets
	Notify   bool // notifiers: their secrets
}

// Everything is the scope of `rewind serve` and `rewind validate`.
var Everything = Scope{Metrics: true, Rollback: true, Notify: true}

// CheckEnvironment checks what the policy names on this machine, in
// scope: every secret file present, readable and not empty, every secret
// variable set, the Prometheus credential and CA files, the kubeconfig
// files, the exec executors' programs. It is the one such check: `rewind
// validate` reports its errors, `serve` logs them and shows them in
// /readyz (a secret mounted later is read then), `analyze` and `backtest`
// refuse to query without their credentials, `rollback` warns. Each error
// has file:line and the field path, like the loader's.
func (p *Policy) CheckEnvironment(s Scope) Errors {
	var errs Errors
	add := func(path string, err error) {
		if err != nil {
			errs = append(errs, p.At(path, "%v", err))
		}
	}
	for _, sys := range p.Systems {
		if s.Metrics {
			pp := sys.Path() + ".prometheus"
			add(pp+".bearerTokenFile", readable(sys.Prometheus.BearerTokenFile))
			add(pp+".basicAuth.passwordFile", readable(sys.Prometheus.BasicAuthPassword))
			add(pp+".caFile", readable(sys.Prometheus.CAFile))
		}
		if s.Rollback {
			errs = append(errs, p.rollbackEnvironment(sys)...)
		}
	}
	if s.Notify {
		for _, name := range slices.Sorted(maps.Keys(p.Notifiers)) {
			n := p.Notifiers[name]
			np := "notifiers." + name
			switch {
			case n.Slack != nil:
				add(secretPath(np+".slack", "webhookURL", *n.Slack), readSecret(*n.Slack))
			case n.PagerDuty != nil:
				add(secretPath(np+".pagerduty", "routingKey", n.PagerDuty.RoutingKey), readSecret(n.PagerDuty.RoutingKey))
			case n.Email != nil && n.Email.Password.Configured():
				add(secretPath(np+".email", "password", n.Email.Password), readSecret(n.Email.Password))
			case n.Webhook != nil && n.Webhook.Secret.Configured():
				add(secretPath(np+".webhook", "secret", n.Webhook.Secret), readSecret(n.Webhook.Secret))
			}
		}
	}
	return errs.Sorted()
}

func (p *Policy) rollbackEnvironment(sys *System) Errors {
	var errs Errors
	rp := sys.Path() + ".rollback"
	if k := sys.Rollback.Kubernetes; k != nil && k.Kubeconfig != "" {
		if err := readable(k.Kubeconfig); err != nil {
			errs = append(errs, p.At(rp+".kubernetes.kubeconfig", "%v", err))
		}
	}
	for _, step := range slices.Sorted(maps.Keys(sys.Rollback.Exec)) {
		if err := runnable(sys.Rollback.Exec[step].Command[0]); err != nil {
			errs = append(errs, p.At(rp+".exec."+step+".command", "%v", err))
		}
	}
	for _, step := range slices.Sorted(maps.Keys(sys.Rollback.Webhook)) {
		if s := sys.Rollback.Webhook[step].Secret; s.Configured() {
			if err := readSecret(s); err != nil {
				errs = append(errs, p.At(secretPath(rp+".webhook."+step, "secret", s), "%v", err))
			}
		}
	}
	return errs
}

// secretPath is the field that names a secret: <prefix>File or <prefix>Env.
func secretPath(path, prefix string, s Secret) string {
	if s.File != "" {
		return path + "." + prefix + "File"
	}
	return path + "." + prefix + "Env"
}

func readSecret(s Secret) error {
	_, err := s.Read()
	return err
}

// readable checks that a file exists and can be read ("" : not set).
func readable(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// runnable checks that an exec executor's program can be run.
func runnable(prog string) error {
	if strings.ContainsRune(prog, filepath.Separator) {
		fi, err := os.Stat(prog)
		switch {
		case err != nil:
			return err
		case fi.IsDir() || fi.Mode()&0o111 == 0:
			return fmt.Errorf("%s is not an executable file", prog)
		}
		return nil
	}
	if _, err := exec.LookPath(prog); err != nil {
		return fmt.Errorf("%s is not found in $PATH", prog)
	}
	return nil
}
