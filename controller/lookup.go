package controller

import (
	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// Lookup returns a system of the policy in force and the metrics source it
// is evaluated through (for the web UI's charts and post-mortem drafts).
func (c *Controller) Lookup(name string) (*policy.System, rewind.Source, error) {
	s, err := c.get(name)
	if err != nil {
		return nil, nil, err
	}
	return s.cfg, s.source, nil
}
