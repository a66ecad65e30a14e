package gitops

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Mode is how a system's GitOps owners are known.
type Mode string

const (
	ModeNone    Mode = "none"    // rollback.gitops: none: never looked for
	ModePolicy  Mode = "policy"  // named in rollback.gitops.owners
	ModeMarkers Mode = "markers" // detected from the markers on the targets
)

// OwnerStatus is one owner as it is now.
type OwnerStatus struct {
	Owner
	// SuspendedBy is the rollback whose suspension is in place; "": not
	// suspended by Rewind.
	SuspendedBy string `json:"suspendedBy,omitempty"`
}

// Status is a system's GitOps owners now: for `rewind analyze`, the API
// and the UI.
type Status struct {
	Mode   Mode          `json:"mode"`
	Owners []OwnerStatus `json:"owners"` // empty: no marker names one
	// AutoResume: rollback.gitops.autoResume.
	AutoResume bool `json:"autoResume,omitempty"`
	// Error says why the owners could not be read (no cluster, forbidden).
	Error     string    `json:"error,omitempty"`
	CheckedAt time.Time `json:"checkedAt,omitzero"`
	// ResumeHint is how people resume a suspended owner.
	ResumeHint string `json:"resumeHint,omitempty"`
}

// NoneStatus is the status of a system with `gitops: none`.
func NoneStatus() *Status { return &Status{Mode: ModeNone} }

// Status reads the system's owners and whether Rewind suspended them; a
// failure is in Error.
func (s *System) Status(ctx context.Context, now time.Time) *Status {
	st := &Status{Mode: ModeMarkers, AutoResume: s.GitOps.AutoResume, CheckedAt: now, ResumeHint: s.ResumeHint(), Owners: []OwnerStatus{}}
	if s.Owners != nil {
		st.Mode = ModePolicy
	}
	owners, err := s.FindOwners(ctx)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	for _, o := range owners {
		by, err := SuspendedBy(ctx, s.Finder, o)
		if err != nil {
			st.Error = err.Error()
		}
		st.Owners = append(st.Owners, OwnerStatus{Owner: o, SuspendedBy: by})
	}
	return st
}

// Suspended names the rollbacks whose suspension of an owner is in place.
func (st *Status) Suspended() []string {
	var out []string
	seen := map[string]bool{}
	for _, o := range st.Owners {
		if o.SuspendedBy != "" && !seen[o.SuspendedBy] {
			seen[o.SuspendedBy] = true
			out = append(out, o.SuspendedBy)
		}
	}
	return out
}

// Lines says it for people, one line per owner, e.g.
// "Flux Kustomization flux-system/apps (labels … on Deployment shop/web): SUSPENDED by rollback rb-1 — rewind resume-gitops --system web".
func (st *Status) Lines() []string {
	switch {
	case st.Mode == ModeNone:
		return []string{"none (rollback.gitops: none): no reconciler is suspended"}
	case st.Error != "" && len(st.Owners) == 0:
		return []string{"unknown: " + st.Error}
	case len(st.Owners) == 0:
		return []string{"no GitOps owner (no Flux or Argo CD marker on the targets)"}
	}
	var out []string
	for _, o := range st.Owners {
		l := fmt.Sprintf("%s (found by %s)", o.Owner, o.Found)
		if o.SuspendedBy != "" {
			l += ": SUSPENDED by rollback " + o.SuspendedBy + " — " + st.ResumeHint
			if st.AutoResume {
				l += ", or automatically once the revert is in Git"
			}
		}
		out = append(out, l)
	}
	if st.Error != "" {
		out = append(out, "error: "+strings.TrimSpace(st.Error))
	}
	return out
}
