package report

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
)

// PostMortemFile is the draft's name in the evidence bundle.
const PostMortemFile = "POSTMORTEM.md"

// The seed's rollback SLOs, against which the draft rates the rollback.
const (
	detectionSLO = 5 * time.Minute // first violating sample → decision
	executionSLO = 2 * time.Minute // decision → recovery verified
)

// todo marks what people must write.
func todo(what string) string {
	if what == "" {
		return "_To be filled in_"
	}
	return "_To be filled in: " + what + "_"
}

// PostMortem renders the seed's post-mortem template as Markdown, filled
// from the record: summary, timeline (canary first seen, first violating
// sample, pending and firing, decision, every step's start and end,
// verification), impact, the triggers against their thresholds and the
// evidence. The sections that need people (root cause, business impact,
// action items, lessons) stay prompts. journal is the rollback's journal
// (plan.Store.Journal); without one the steps' records are used.
func PostMortem(rb *rewind.Rollback, journal []plan.JournalEntry, impact Impact) string {
	d := newDraft(rb, journal, impact)
	var b strings.Builder
	d.summary(&b)
	d.timeline(&b)
	d.triggers(&b)
	d.rootCause(&b)
	d.impactSection(&b)
	d.wentWellWrong(&b)
	d.peopleSections(&b)
	d.evidence(&b)
	return b.String()
}

// WritePostMortem writes the draft into rb's evidence bundle as
// POSTMORTEM.md and returns its path.
func WritePostMortem(rb *rewind.Rollback, journal []plan.JournalEntry, impact Impact) (string, error) {
	if rb.Evidence == "" {
		return "", fmt.Errorf("rollback %s has no evidence bundle", rb.ID)
	}
	if isURL(rb.Evidence) {
		return "", fmt.Errorf("rollback %s: its evidence bundle is in %s: write the draft into its local copy (WriteDraftIn) and archive it", rb.ID, rb.Evidence)
	}
	return writePostMortemIn(rb.Evidence, rb, journal, impact)
}

func writePostMortemIn(dir string, rb *rewind.Rollback, journal []plan.JournalEntry, impact Impact) (string, error) {
	path := filepath.Join(dir, PostMortemFile)
	if err := os.WriteFile(path, []byte(PostMortem(rb, journal, impact)), 0o640); err != nil {
		return "", fmt.Errorf("writing the post-mortem of %s: %w", rb.ID, err)
	}
	return path, nil
}

// DraftPostMortem reads rollback id and its journal from st, estimates the
// impact from src (what cannot be measured becomes a note in the draft, not
// a failure; src and sys may be nil) and renders the draft: what
// `rewind postmortem ID` prints.
func DraftPostMortem(ctx context.Context, st plan.Store, src rewind.Source, sys *policy.System, id string) (string, *rewind.Rollback, error) {
	rb, journal, im, err := gather(ctx, st, src, sys, id)
	if err != nil {
		return "", nil, err
	}
	return PostMortem(rb, journal, im), rb, nil
}

// WriteDraft drafts the post-mortem of rollback id (as DraftPostMortem) and
// writes it into its evidence bundle: what the controller does after every
// rollback. It returns the file's path.
func WriteDraft(ctx context.Context, st plan.Store, src rewind.Source, sys *policy.System, id string) (string, error) {
	rb, journal, im, err := gather(ctx, st, src, sys, id)
	if err != nil {
		return "", err
	}
	return WritePostMortem(rb, journal, im)
}

// WriteDraftIn is WriteDraft into dir, the local copy of a bundle that is
// archived elsewhere (an S3 bucket: Rollback.Evidence is its URL).
func WriteDraftIn(ctx context.Context, st plan.Store, src rewind.Source, sys *policy.System, id, dir string) (string, error) {
	rb, journal, im, err := gather(ctx, st, src, sys, id)
	if err != nil {
		return "", err
	}
	return writePostMortemIn(dir, rb, journal, im)
}

// isURL: an evidence location in a bucket (s3://...) rather than a directory.
func isURL(loc string) bool { return strings.Contains(loc, "://") }

// inBundle names file f of the bundle at loc.
func inBundle(loc, f string) string {
	if isURL(loc) {
		return strings.TrimSuffix(loc, "/") + "/" + f
	}
	return filepath.Join(loc, f)
}

func gather(ctx context.Context, st plan.Store, src rewind.Source, sys *policy.System, id string) (*rewind.Rollback, []plan.JournalEntry, Impact, error) {
	rb, err := st.Get(ctx, id)
	if err != nil {
		return nil, nil, Impact{}, err
	}
	journal, err := st.Journal(ctx, id)
	if err != nil {
		return nil, nil, Impact{}, err
	}
	var im Impact
	if sys != nil && src != nil {
		im, err = EstimateImpact(ctx, src, sys, rb)
		if err != nil && ctx.Err() != nil {
			return nil, nil, Impact{}, err
		}
	} else {
		im.Notes = append(im.Notes, "no metrics source: impact not estimated")
		if sys != nil {
			im.Thresholds = Thresholds(sys)
		}
	}
	return rb, journal, im, nil
}

type draft struct {
	rb       *rewind.Rollback
	journal  []plan.JournalEntry
	im       Impact
	decided  time.Time // decision, or start of a manual rollback
	first    time.Time // first violating sample (zero for manual)
	verified time.Time // end of a verify step that passed
	layout   string
}

func newDraft(rb *rewind.Rollback, journal []plan.JournalEntry, im Impact) *draft {
	d := &draft{rb: rb, journal: journal, im: im, decided: rb.Started, layout: "15:04:05"}
	if rb.Decision != nil {
		d.decided, d.first = rb.Decision.At, firstViolation(rb.Decision)
	}
	if v := rb.Step(rewind.StepVerify); v != nil && v.State == rewind.StepDone {
		d.verified = v.Ended
	}
	return d
}

func (d *draft) manual() bool { return d.rb.Decision == nil }

func (d *draft) summary(b *strings.Builder) {
	rb := d.rb
	fmt.Fprintf(b, "# Rollback Post-Mortem - %s\n\n", d.decided.UTC().Format("2006-01-02"))
	from := "rollback `" + rb.ID + "`"
	if len(d.journal) > 0 {
		from += " and its journal"
	}
	fmt.Fprintf(b, "> Draft written by Rewind from %s. Times are UTC. Sections marked _To be filled in_ need people.\n\n", from)
	b.WriteString("## Incident Summary\n")
	fmt.Fprintf(b, "- **System:** %s\n", rb.System)
	how := "automatic, decided by Rewind"
	if d.manual() {
		how = "manual, requested by " + rb.Requester
	}
	fmt.Fprintf(b, "- **Rollback:** `%s` (%s) — %s\n", rb.ID, how, outcomeText(rb))
	fmt.Fprintf(b, "- **Rollback Time:** %s\n", stamp(d.decided))
	if start, end, ok := d.span(); ok {
		fmt.Fprintf(b, "- **Duration:** %s (%s → %s)\n", dur(end.Sub(start)), d.label(start), d.label(end))
	}
	if !d.first.IsZero() {
		fmt.Fprintf(b, "- **Detection Time:** %s (first violating sample → decision)\n", dur(d.decided.Sub(d.first)))
	}
	if line, ok := d.impactLine(); ok {
		fmt.Fprintf(b, "- **User Impact:** %s\n", line)
	} else {
		b.WriteString("- **User Impact:** unknown (see Impact Assessment)\n")
	}
	fmt.Fprintf(b, "- **Reason:** %s\n", rb.Reason)
	if rb.Error != "" {
		fmt.Fprintf(b, "- **Error:** %s\n", rb.Error)
	}
	fmt.Fprintf(b, "- **Root Cause:** %s\n\n", todo("a brief description"))
}

// span is detection to recovery: the first violating sample (or the
// start) to the verified recovery (or the rollback's end).
func (d *draft) span() (time.Time, time.Time, bool) {
	start := d.first
	if start.IsZero() {
		start = d.rb.Started
	}
	end := d.verified
	if end.IsZero() {
		end = d.rb.Ended
	}
	return start, end, !end.IsZero()
}

func (d *draft) impactLine() (string, bool) {
	n, ok := d.im.Affected()
	if !ok {
		return "unknown", false
	}
	s := fmt.Sprintf("≈ %s failed requests", count(n))
	if req, ok := d.im.Requests(); ok {
		s += fmt.Sprintf(" of ≈ %s served by the canary", count(req))
	}
	var about []string
	if share, ok := d.im.CanaryShare(); ok {
		about = append(about, pct(share)+" of traffic")
	}
	about = append(about, "error rate "+pct(*d.im.CanaryErrorRate))
	return s + " (" + strings.Join(about, ", ") + ") in " + dur(d.im.Duration()), true
}

func (d *draft) triggers(b *strings.Builder) {
	if d.rb.Decision == nil {
		return
	}
	b.WriteString("## Triggers\n| Trigger | Severity | Canary | Baseline | Threshold | Violating since | Detail |\n|---|---|---|---|---|---|---|\n")
	for _, f := range rewind.FindingsOf(d.rb.Decision, d.im.Thresholds) {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", f.Trigger, f.Severity, num(f.Canary), num(f.Baseline),
			code(f.Threshold), d.label(f.ActiveAt), cell(f.Detail))
	}
	fmt.Fprintf(b, "\nPolicy `%s`.\n\n", d.rb.Decision.PolicyHash)
}

func (d *draft) rootCause(b *strings.Builder) {
	b.WriteString("## Root Cause Analysis\n\n### What Happened?\n" + todo("a detailed description of the issue") + "\n\n")
	b.WriteString("### Why Did It Happen?\n" + todo("the technical root cause") + "\n\n")
	b.WriteString("### Why Wasn't It Caught Earlier?\n" + todo("testing gaps, monitoring gaps") + "\n\n")
}

func (d *draft) impactSection(b *strings.Builder) {
	im := d.im
	b.WriteString("## Impact Assessment\n\n### User Impact\n")
	line, _ := d.impactLine()
	fmt.Fprintf(b, "- **Affected Requests:** %s\n", line)
	if share, ok := im.CanaryShare(); ok {
		fmt.Fprintf(b, "- **Canary Share of Traffic:** %s (canary %s req/s, baseline %s req/s at the decision)\n", pct(share), num(im.CanaryRate), num(im.BaselineRate))
	} else {
		b.WriteString("- **Canary Share of Traffic:** unknown\n")
	}
	if im.Duration() > 0 {
		fmt.Fprintf(b, "- **Duration:** %s (%s - %s: first violating sample to canary drained)\n", dur(im.Duration()), d.label(im.From), d.label(im.To))
	}
	if im.CanaryErrorRate != nil {
		s := fmt.Sprintf("- **Error Rate:** %s on the canary", pct(*im.CanaryErrorRate))
		if im.BaselineErrorRate != nil {
			s += fmt.Sprintf(" (baseline %s)", pct(*im.BaselineErrorRate))
		}
		b.WriteString(s + " at the decision\n")
	} else {
		b.WriteString("- **Error Rate:** unknown\n")
	}
	for _, n := range im.Notes {
		fmt.Fprintf(b, "- _Not measured: %s_\n", n)
	}
	b.WriteString("\n### Business Impact\n")
	fmt.Fprintf(b, "- **Revenue:** %s\n- **Reputation:** %s\n- **SLO:** %s\n\n", todo("revenue impact"), todo("customer complaints"), todo("error budget consumed"))
}

func (d *draft) wentWellWrong(b *strings.Builder) {
	var well, wrong []string
	rate := func(ok bool, s string) {
		if ok {
			well = append(well, "✅ "+s)
		} else {
			wrong = append(wrong, "❌ "+s)
		}
	}
	if !d.first.IsZero() {
		det := d.decided.Sub(d.first)
		rate(det <= detectionSLO, fmt.Sprintf("Automated detection in %s (SLO: %s)", dur(det), dur(detectionSLO)))
	}
	if !d.verified.IsZero() {
		ex := d.verified.Sub(d.decided)
		rate(ex <= executionSLO, fmt.Sprintf("Rollback to verified recovery in %s (SLO: %s)", dur(ex), dur(executionSLO)))
	}
	rate(d.rb.State == rewind.RollbackSucceeded, "Rollback "+outcomeText(d.rb))
	for _, s := range d.rb.Steps {
		switch s.State {
		case rewind.StepFailed:
			rate(false, fmt.Sprintf("Step %s failed: %s", s.Name, s.Error))
		case rewind.StepEscalated:
			rate(false, fmt.Sprintf("Step %s escalated: %s", s.Name, s.Detail))
		}
	}
	ev := d.rb.Step(rewind.StepEvidence)
	rate(d.rb.Evidence != "" && ev != nil && ev.State == rewind.StepDone, "Evidence preserved automatically")
	b.WriteString("## What Went Well?\n\n")
	list(b, append(well, todo("more")))
	b.WriteString("## What Went Wrong?\n\n")
	list(b, append(wrong, todo("test coverage or monitoring gaps")))
}

func (d *draft) peopleSections(b *strings.Builder) {
	b.WriteString("## Action Items\n\n| # | Action | Owner | Due Date | Status |\n|---|--------|-------|----------|--------|\n")
	n := 1
	// A suspended GitOps reconciler stays suspended until people merge the
	// revert and resume it (docs/gitops.md).
	if s := d.rb.Step(rewind.StepSuspendGitOps); s != nil && s.State == rewind.StepDone && s.Facts["suspended"] != "" {
		action := "Merge the revert in Git, then resume " + s.Facts["suspended"]
		if g := d.rb.Step(rewind.StepGitRevert); g != nil && g.Facts["pullRequest"] != "" {
			action = "Merge " + g.Facts["pullRequest"] + ", then resume " + s.Facts["suspended"]
		}
		fmt.Fprintf(b, "| %d | %s (`rewind resume-gitops --system %s`) | @owner | YYYY-MM-DD | Open |\n", n, cell(action), d.rb.System)
		n++
	}
	fmt.Fprintf(b, "| %d | %s | @owner | YYYY-MM-DD | Open |\n\n", n, todo("action"))
	b.WriteString("## Lessons Learned\n\n")
	list(b, []string{"**Testing:** " + todo(""), "**Monitoring:** " + todo(""), "**Process:** " + todo(""), "**Communication:** " + todo("")})
	b.WriteString("## Prevention Strategy\n\n- " + todo("prevention steps") + "\n\n")
}

func (d *draft) evidence(b *strings.Builder) {
	b.WriteString("## Evidence\n\n")
	if dir := d.rb.Evidence; dir != "" {
		fmt.Fprintf(b, "- Bundle: `%s` (index: `%s`)\n", dir, inBundle(dir, "INDEX.md"))
		files := []string{"rollback.json", "metrics.json"}
		if d.rb.Decision != nil {
			files = append([]string{"decision.json"}, files...)
		}
		for _, f := range files {
			fmt.Fprintf(b, "- `%s`: %s\n", inBundle(dir, f), describe(f))
		}
	} else {
		b.WriteString("- No evidence bundle was written.\n")
	}
	b.WriteString("\n---\n\n**Post-Mortem Completed:** _[Date]_\n**Reviewed By:** _[Team members]_\n**Follow-up Review:** _[Date + 1 week]_\n")
}

func (d *draft) label(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(d.layout)
}

func list(b *strings.Builder, items []string) {
	for i, s := range items {
		fmt.Fprintf(b, "%d. %s\n", i+1, s)
	}
	b.WriteString("\n")
}

func outcomeText(rb *rewind.Rollback) string {
	switch rb.State {
	case rewind.RollbackSucceeded:
		return "succeeded"
	case rewind.RollbackFailed:
		return "failed"
	}
	return "still running"
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func dur(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func num(v *float64) string {
	if v == nil || math.IsNaN(*v) {
		return "—"
	}
	return strconv.FormatFloat(*v, 'g', 4, 64)
}

func values(c, b *float64) string {
	s := "canary " + num(c)
	if b != nil {
		s += " vs baseline " + num(b)
	}
	return s
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'g', 3, 64) + "%" }

// count rounds an estimate for reading: 225, 9 000, 1.2 million.
func count(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + " million"
	case v >= 1000:
		s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
		return s[:len(s)-3] + " " + s[len(s)-3:]
	}
	return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
}

func code(s string) string {
	if s == "" {
		return "—"
	}
	return "`" + strings.ReplaceAll(s, "`", "'") + "`"
}

// cell makes s safe in a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
