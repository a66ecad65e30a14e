package email

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"

	mail "github.com/wneessen/go-mail"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify/internal/httpx"
	"github.com/rewind-sre/rewind/notify/internal/render"
)

// maxSubject keeps the subject on one line in any client.
const maxSubject = 200

// EventHeader carries the event's key.
const EventHeader = "X-Rewind-Event"

// Subject is the subject line of e.
func Subject(e rewind.Event) string {
	return httpx.Clip("[Rewind] "+render.Summary(e), maxSubject)
}

// MessageID is stable per event and recipient list, so that a retry is
// recognisable as the same message.
func (n *Notifier) messageID(e rewind.Event) string {
	sum := sha256.Sum256([]byte(n.c.Name + "|" + e.Key()))
	domain := "rewind.invalid"
	if at := strings.LastIndexByte(n.c.From, '@'); at >= 0 {
		domain = strings.Trim(n.c.From[at+1:], "> ")
	}
	return "rewind." + hex.EncodeToString(sum[:12]) + "@" + domain
}

func (n *Notifier) message(e rewind.Event) (*mail.Msg, error) {
	text, html, err := Bodies(e)
	if err != nil {
		return nil, err
	}
	m := mail.NewMsg()
	if err := m.From(n.c.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := m.To(n.c.To...); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	m.Subject(Subject(e))
	m.SetDate()
	m.SetMessageIDWithValue(n.messageID(e))
	m.SetGenHeader(EventHeader, e.Key())
	m.SetBodyString(mail.TypeTextPlain, text)
	m.AddAlternativeString(mail.TypeTextHTML, html)
	return m, nil
}

// view is what the templates render.
type view struct {
	E        rewind.Event
	Title    string
	Summary  string
	Manual   string
	Findings []rewind.Finding
	Steps    []rewind.StepRecord
	Links    []rewind.Link
}

// Bodies renders e as the plain-text and HTML parts.
func Bodies(e rewind.Event) (text, html string, err error) {
	v := view{E: e, Title: e.Title(), Summary: render.Summary(e), Findings: e.Findings, Steps: render.Steps(e.Rollback), Links: e.Links.List()}
	if rb := e.Rollback; rb != nil && rb.Requester != "" && rb.Requester != "rewind" {
		v.Manual = rb.Requester
	}
	var t, h strings.Builder
	if err := textTmpl.Execute(&t, v); err != nil {
		return "", "", fmt.Errorf("rendering the text part: %w", err)
	}
	if err := htmlTmpl.Execute(&h, v); err != nil {
		return "", "", fmt.Errorf("rendering the HTML part: %w", err)
	}
	return t.String(), h.String(), nil
}

var funcs = map[string]any{
	"value": render.Value, "time": render.Time, "finding": render.Finding, "step": render.Step,
	"duration": func(s rewind.StepRecord) string {
		if s.Duration() <= 0 {
			return ""
		}
		return render.Duration(s.Duration())
	},
}

var textTmpl = texttemplate.Must(texttemplate.New("text").Funcs(funcs).Parse(`{{.Title}}
Severity: {{.E.Severity}}
{{- with .E.RollbackID}}
Rollback: {{.}}{{end}}
{{- with .Manual}}
Requested by: {{.}}{{end}}
{{- with .E.Reason}}
Reason: {{.}}{{end}}
{{- with .Findings}}

Triggers
{{- range .}}
- {{finding .}}{{with .Detail}}
  {{.}}{{end}}
{{- end}}{{end}}
{{- with .Steps}}

Steps
{{- range .}}
- {{step .}}
{{- end}}{{end}}
{{- with .Links}}

Links
{{- range .}}
- {{.Label}}: {{.Target}}
{{- end}}{{end}}

-- 
Rewind · {{.E.Key}} · {{time .E.At}}
`))

var htmlTmpl = htmltemplate.Must(htmltemplate.New("html").Funcs(funcs).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body style="font-family: sans-serif">
<h2>{{.Title}}</h2>
<table>
<tr><th align="left">Severity</th><td>{{.E.Severity}}</td></tr>
{{- with .E.RollbackID}}
<tr><th align="left">Rollback</th><td><code>{{.}}</code></td></tr>{{end}}
{{- with .Manual}}
<tr><th align="left">Requested by</th><td>{{.}}</td></tr>{{end}}
{{- with .E.Reason}}
<tr><th align="left">Reason</th><td>{{.}}</td></tr>{{end}}
</table>
{{- with .Findings}}
<h3>Triggers</h3>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>trigger</th><th>severity</th><th>canary</th><th>baseline</th><th>threshold</th><th>violating since</th></tr>
{{- range .}}
<tr><td>{{.Trigger}}</td><td>{{.Severity}}</td><td>{{value .Canary}}</td><td>{{value .Baseline}}</td><td><code>{{.Threshold}}</code></td><td>{{time .ActiveAt}}</td></tr>
{{- with .Detail}}
<tr><td></td><td colspan="5"><small>{{.}}</small></td></tr>{{end}}
{{- end}}
</table>{{end}}
{{- with .Steps}}
<h3>Steps</h3>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>step</th><th>state</th><th>duration</th><th>detail</th></tr>
{{- range .}}
<tr><td>{{.Name}}</td><td>{{.State}}</td><td>{{duration .}}</td><td>{{if .Error}}{{.Error}}{{else}}{{.Detail}}{{end}}</td></tr>
{{- end}}
</table>{{end}}
{{- with .Links}}
<h3>Links</h3>
<ul>
{{- range .}}
<li>{{.Label}}: {{if .IsURL}}<a href="{{.Target}}">{{.Target}}</a>{{else}}<code>{{.Target}}</code>{{end}}</li>
{{- end}}
</ul>{{end}}
<p><small>Rewind · {{.E.Key}} · {{time .E.At}}</small></p>
</body></html>
`))
