package ui

import (
	"fmt"
	"html/template"
	"strings"
)

// pageNames are the page templates; each defines "main" for the layout.
var pageNames = []string{"overview", "system", "rollbacks", "rollback", "login", "error"}

var funcs = template.FuncMap{
	"stamp": stamp,
	"day":   day,
	"dur":   dur,
	"join":  strings.Join,
}

// parseTemplates parses the layout and the fragments once, and each page on
// a clone of them.
func (u *UI) parseTemplates() error {
	base, err := template.New("ui").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/frags.html")
	if err != nil {
		return fmt.Errorf("ui: templates: %w", err)
	}
	u.frags = base
	u.pages = map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := base.Clone()
		if err == nil {
			t, err = t.ParseFS(templateFS, "templates/"+name+".html")
		}
		if err != nil {
			return fmt.Errorf("ui: template %s: %w", name, err)
		}
		u.pages[name] = t
	}
	return nil
}
