package daemon

import (
	"maps"
	"net/http"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/ui"
)

// UIOptions configure the web UI (package ui), served at "/" with the
// API's token and open-reads setting.
type UIOptions struct {
	// IdentityHeader names the header in which an authenticating proxy
	// passes the user (see ui.Options.IdentityHeader); empty: token login
	// only.
	IdentityHeader string
}

// uiHistory subscribes the UI's record of trigger states to the events,
// before the controller publishes its first cycle.
func (d *Daemon) uiHistory() []rewind.Publisher {
	if d.opt.UI == nil {
		return nil
	}
	d.history = ui.NewHistory()
	return []rewind.Publisher{d.history}
}

// newUI builds the web UI over the controller, the store (rollbacks,
// journal and outbox) and the evidence bundles.
func (d *Daemon) newUI() error {
	if d.opt.UI == nil {
		return nil
	}
	u, err := ui.New(ui.Options{Controller: d.ctl, Rollbacks: d.opt.Store, Notices: d.opt.Store, History: d.history,
		Token: d.opt.Token, OpenReads: d.opt.OpenReads, IdentityHeader: d.opt.UI.IdentityHeader,
		Audit: d.log.With("audit", true), Log: d.log, Now: d.opt.Now, Version: d.opt.Version,
		Revisions: d.revisions,
		GitOps: func(system string) []string {
			if st := d.GitOpsStatus(system); st != nil {
				return st.Lines()
			}
			return nil
		}})
	if err != nil {
		return err
	}
	d.ui = u
	return nil
}

// mounts are the handlers beside the API: Options.Handlers, and the UI at "/".
func (d *Daemon) mounts() map[string]http.Handler {
	m := maps.Clone(d.opt.Handlers)
	if d.ui != nil {
		if m == nil {
			m = map[string]http.Handler{}
		}
		m["/"] = d.ui
	}
	return m
}
