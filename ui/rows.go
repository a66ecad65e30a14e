package ui

import (
	"html"
	"html/template"
	"strconv"
	"strings"
)

// rowsHTML renders a system's rows of the overview's table: one <tbody>
// per system, a row per trigger. It is the one fragment rendered for every
// system, every second the overview is open, so it is written out here
// rather than through html/template (whose escaping goes through
// reflection for every value: five times the cost with 1 000 systems).
// Every value goes through html.EscapeString; names, states and numbers
// are all it holds. TestRowsEscape checks it with hostile text.
func rowsHTML(v *sysView) template.HTML {
	var b strings.Builder
	b.Grow(256 + 200*len(v.Triggers))
	w := func(parts ...string) {
		for _, p := range parts {
			b.WriteString(p)
		}
	}
	name := html.EscapeString(v.Name)
	w(`<tbody id="s-`, name, `" class="sys" data-name="`, name, `"`)
	if len(v.Attention) > 0 {
		w(` data-attn="1"`)
	}
	w(`><tr><th scope="rowgroup" rowspan="`, strconv.Itoa(max(len(v.Triggers), 1)), `"><a href="systems/`, name, `">`, name,
		`</a><span class="meta">`, html.EscapeString(v.Mode))
	if v.Paused {
		w(` <span class="tag paused">paused</span>`)
	}
	if v.Blind {
		w(` <span class="tag blind">blind</span>`)
	}
	if v.InFlight != "" {
		w(` <a class="tag inflight" href="rollbacks/`, html.EscapeString(v.InFlight), `">rolling back</a>`)
	}
	w(`</span></th>`)
	for i := range v.Triggers {
		t := &v.Triggers[i]
		if i > 0 {
			w(`<tr>`)
		}
		state := html.EscapeString(string(t.State))
		w(`<td>`, html.EscapeString(t.Name), `</td><td><span class="st st-`, state, `">`, state, `</span></td><td class="num">`,
			html.EscapeString(t.Canary), `</td><td class="num">`, html.EscapeString(t.Baseline), `</td><td>`)
		if t.HoldMax > 0 {
			w(`<progress max="`, strconv.FormatInt(t.HoldMax, 10), `" value="`, strconv.FormatInt(t.HoldNow, 10), `" aria-label="`,
				html.EscapeString(t.Name+": "+t.Hold), `"></progress> `)
		}
		w(html.EscapeString(t.Hold), `</td></tr>`)
	}
	if len(v.Triggers) == 0 {
		w(`<td colspan="5">no triggers</td></tr>`)
	}
	w(`</tbody>`)
	return template.HTML(b.String()) // every value above is escaped
}
