package slack

import (
	"fmt"
	"strings"
	"unicode/utf8"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify/internal/httpx"
	"github.com/rewind-sre/rewind/notify/internal/render"
)

// Slack's limits (api.slack.com/reference/block-kit).
const (
	MaxBlocks       = 50
	MaxSectionText  = 3000
	MaxFieldText    = 2000
	MaxFields       = 10
	MaxHeaderText   = 150
	MaxFallbackText = 3000 // well under the 40 000 of a message's text
)

// Message is an incoming webhook's payload.
type Message struct {
	Text   string  `json:"text"` // fallback for notifications and old clients
	Blocks []Block `json:"blocks"`
}

// Block is one Block Kit layout block (header, section, divider, context).
type Block struct {
	Type     string `json:"type"`
	Text     *Text  `json:"text,omitempty"`
	Fields   []Text `json:"fields,omitempty"`
	Elements []Text `json:"elements,omitempty"`
	BlockID  string `json:"block_id,omitempty"`
}

// Text is a text object: plain_text or mrkdwn.
type Text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func mrkdwn(s string, limit int) *Text { return &Text{Type: "mrkdwn", Text: clip(s, limit)} }

// Build renders e as a Block Kit message within Slack's limits: header,
// the facts, one section per finding (values against threshold), the steps
// with their durations, links, and a context line. Findings that do not fit
// in 50 blocks are counted in a last section.
func Build(e rewind.Event) Message {
	head := []Block{{Type: "header", Text: &Text{Type: "plain_text", Text: httpx.Clip(e.Title(), MaxHeaderText)}}}
	head = append(head, Block{Type: "section", Fields: facts(e)})

	var tail []Block
	if steps := render.Steps(e.Rollback); len(steps) > 0 {
		var b strings.Builder
		b.WriteString("*Steps*")
		for _, s := range steps {
			b.WriteString("\n• " + escape(render.Step(s)))
		}
		tail = append(tail, Block{Type: "section", Text: mrkdwn(b.String(), MaxSectionText)})
	}
	if links := e.Links.List(); len(links) > 0 {
		var parts []string
		for _, l := range links {
			if l.IsURL() {
				parts = append(parts, fmt.Sprintf("<%s|%s>", l.Target, escape(l.Label)))
			} else {
				parts = append(parts, fmt.Sprintf("%s: `%s`", escape(l.Label), escape(l.Target)))
			}
		}
		tail = append(tail, Block{Type: "section", Text: mrkdwn("*Links*\n"+strings.Join(parts, "\n"), MaxSectionText)})
	}
	tail = append(tail, Block{Type: "context", Elements: []Text{*mrkdwn(escape(fmt.Sprintf("Rewind · %s · %s", e.Key(), render.Time(e.At))), MaxSectionText)}})

	blocks := head
	room := MaxBlocks - len(head) - len(tail)
	for i, f := range e.Findings {
		if i == room-1 && len(e.Findings) > room {
			blocks = append(blocks, Block{Type: "section", Text: mrkdwn(fmt.Sprintf("…and %d more triggers (see the evidence)", len(e.Findings)-i), MaxSectionText)})
			break
		}
		blocks = append(blocks, Block{Type: "section", Text: mrkdwn(finding(f), MaxSectionText)})
	}
	blocks = append(blocks, tail...)
	return Message{Text: httpx.Clip(render.Summary(e), MaxFallbackText), Blocks: blocks}
}

func facts(e rewind.Event) []Text {
	fields := []Text{
		{"mrkdwn", "*System*\n" + escape(e.System)},
		{"mrkdwn", "*Severity*\n" + escape(string(e.Severity))},
	}
	if e.RollbackID != "" {
		fields = append(fields, Text{"mrkdwn", "*Rollback*\n" + escape(e.RollbackID)})
	}
	if rb := e.Rollback; rb != nil && rb.Requester != "" && rb.Requester != "rewind" {
		fields = append(fields, Text{"mrkdwn", "*Requested by*\n" + escape(rb.Requester)})
	}
	if e.Reason != "" {
		fields = append(fields, Text{"mrkdwn", "*Reason*\n" + escape(e.Reason)})
	}
	for i := range fields {
		fields[i].Text = clip(fields[i].Text, MaxFieldText)
	}
	return fields[:min(len(fields), MaxFields)]
}

func finding(f rewind.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s*", escape(f.Trigger))
	if f.Severity != "" {
		fmt.Fprintf(&b, " (%s)", escape(f.Severity))
	}
	fmt.Fprintf(&b, "\ncanary `%s`", render.Value(f.Canary))
	if f.Baseline != nil {
		fmt.Fprintf(&b, " vs baseline `%s`", render.Value(f.Baseline))
	}
	if f.Threshold != "" {
		fmt.Fprintf(&b, "\nthreshold: `%s`", escape(f.Threshold))
	}
	if !f.ActiveAt.IsZero() {
		fmt.Fprintf(&b, "\nviolating since %s", render.Time(f.ActiveAt))
	}
	if f.Detail != "" {
		fmt.Fprintf(&b, "\n_%s_", escape(f.Detail))
	}
	return b.String()
}

// escape makes s safe in mrkdwn: Slack's three control characters.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// clip cuts s to n characters with an ellipsis, never inside an entity.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	c := []rune(httpx.Clip(s, n))
	body := string(c[:len(c)-1])
	if amp := strings.LastIndexByte(body, '&'); amp >= 0 && !strings.Contains(body[amp:], ";") {
		body = body[:amp]
	}
	return body + "…"
}
