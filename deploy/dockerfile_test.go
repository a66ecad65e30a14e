package deploy_test

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoRoot is the module root, deploy's parent.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod above deploy/: %v", err)
	}
	return root
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
	line int
}

// stage is a FROM and the instructions up to the next.
type stage struct {
	from, name string
	ins        []instruction
}

var dockerfileDirective = regexp.MustCompile(`^#\s*\w+\s*=`)

func parseDockerfile(t *testing.T, text string) (args map[string]string, stages []*stage) {
	t.Helper()
	args = map[string]string{}
	var ins []instruction
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		start := i + 1
		for strings.HasSuffix(l, `\`) && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") {
				continue
			}
			l = strings.TrimSuffix(l, `\`) + " " + next
		}
		cmd, rest, _ := strings.Cut(l, " ")
		ins = append(ins, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(rest), line: start})
	}
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--platform=") })
			s := &stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
		case len(stages) == 0:
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile line %d: %s before the first FROM", in.line, in.cmd)
			}
			name, def, _ := strings.Cut(in.args, "=")
			args[name] = def
		default:
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
	}
	return args, stages
}

func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (s *stage) last(cmd string) (instruction, bool) {
	all := s.all(cmd)
	if len(all) == 0 {
		return instruction{}, false
	}
	return all[len(all)-1], true
}

// env is a stage's ENV, in the KEY=VALUE form.
func (s *stage) env(t *testing.T) map[string]string {
	env := map[string]string{}
	for _, in := range s.all("ENV") {
		for _, kv := range shellWords(t, in.args) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("Dockerfile line %d: ENV %s: use KEY=VALUE", in.line, in.args)
			}
			env[k] = v
		}
	}
	return env
}

// stageArgs are a stage's ARG defaults.
func (s *stage) argDefaults() map[string]string {
	out := map[string]string{}
	for _, in := range s.all("ARG") {
		for _, a := range strings.Fields(in.args) {
			k, v, _ := strings.Cut(a, "=")
			out[k] = v
		}
	}
	return out
}

// shellWords splits a shell command line into words: single and double
// quotes, backslash escapes; no expansion.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quote := false, rune(0)
	for i := 0; i < len(s); i++ {
		c := rune(s[i])
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case quote == '"':
			switch c {
			case '"':
				quote = 0
			case '\\':
				i++
				cur.WriteByte(s[i])
			default:
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\':
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == ';' || c == '&' || c == '|':
			t.Fatalf("shellWords: %q: only a simple command is expected", s)
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("shellWords: unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

var dockerVar = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

func expandVars(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	return dockerVar.ReplaceAllStringFunc(s, func(m string) string {
		sub := dockerVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := vars[name]
		if !ok {
			t.Fatalf("%s: $%s is not defined", s, name)
		}
		return v
	})
}

type dockerfile struct {
	args         map[string]string
	build, final *stage
	goBuild      instruction
}

func loadDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	args, stages := parseDockerfile(t, string(text))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a multi-stage build", len(stages))
	}
	d := &dockerfile{args: args, final: stages[len(stages)-1]}
	for _, s := range stages[:len(stages)-1] {
		for _, in := range s.all("RUN") {
			if strings.Contains(in.args, "go build") {
				d.build, d.goBuild = s, in
			}
		}
	}
	if d.build == nil {
		t.Fatal("Dockerfile: no build stage runs `go build`")
	}
	return d
}

// goBuildCommand returns the environment assignments and the argv of the
// build stage's `go build`, with the --mount flags of RUN dropped.
func (d *dockerfile) goBuildCommand(t *testing.T) (env []string, argv []string) {
	words := shellWords(t, d.goBuild.args)
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		words = words[1:]
	}
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		env, words = append(env, words[0]), words[1:]
	}
	return env, words
}

var goDirective = regexp.MustCompile(`(?m)^go (\d+\.\d+(?:\.\d+)?)\s*$`)

// compareVersions compares dotted release numbers ("1.26" < "1.26.8");
// anything else sorts first.
func compareVersions(a, b string) int {
	num := func(v string) []int {
		var out []int
		for _, p := range strings.Split(v, ".") {
			n, err := strconv.Atoi(p)
			if err != nil {
				return nil
			}
			out = append(out, n)
		}
		return out
	}
	return slices.Compare(num(a), num(b))
}

// TestDockerfile checks the image's properties: multi-stage, a golang
// builder at least as new as go.mod's go line, a static stripped trimpath
// build stamped with the version, a distroless non-root runtime, the
// entrypoint and default command; and that they agree with deployment.yaml.
func TestDockerfile(t *testing.T) {
	d := loadDockerfile(t)

	// The builder: golang at the Go release go.mod requires, or later.
	builder := expandVars(t, d.build.from, d.args)
	goVersion, ok := strings.CutPrefix(builder, "golang:")
	if !ok {
		t.Fatalf("build stage FROM %s, want golang:VERSION", builder)
	}
	goVersion, _, _ = strings.Cut(goVersion, "-") // golang:1.26.8-bookworm
	gomod, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := goDirective.FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	if compareVersions(goVersion, string(m[1])) < 0 {
		t.Errorf("builder %s is older than go.mod's go %s", builder, m[1])
	}
	if d.build.name == "" {
		t.Error("the build stage has no name (FROM ... AS build)")
	}
	env := d.build.env(t)
	if env["CGO_ENABLED"] != "0" {
		t.Errorf("build stage ENV CGO_ENABLED=%q, want 0 (a static binary)", env["CGO_ENABLED"])
	}
	if env["GOTOOLCHAIN"] != "local" {
		t.Errorf("build stage ENV GOTOOLCHAIN=%q, want local (no toolchain download in the build)", env["GOTOOLCHAIN"])
	}

	// The build line.
	_, argv := d.goBuildCommand(t)
	if len(argv) < 2 || argv[0] != "go" || argv[1] != "build" {
		t.Fatalf("build line %q", d.goBuild.args)
	}
	ldflags := ""
	for i, a := range argv {
		if a == "-ldflags" && i+1 < len(argv) {
			ldflags = argv[i+1]
		}
	}
	if !slices.Contains(argv, "-trimpath") {
		t.Error("go build without -trimpath")
	}
	for _, want := range []string{"-s", "-w", "-X"} {
		if !slices.Contains(strings.Fields(ldflags), want) {
			t.Errorf("-ldflags %q lacks %s", ldflags, want)
		}
	}
	if !strings.Contains(ldflags, "github.com/rewind-sre/rewind/cli.Version=${VERSION}") {
		t.Errorf("-ldflags %q does not stamp cli.Version with the VERSION build argument", ldflags)
	}
	if argv[len(argv)-1] != "./cmd/rewind" {
		t.Errorf("go build builds %s, want ./cmd/rewind", argv[len(argv)-1])
	}
	out := ""
	for i, a := range argv {
		if a == "-o" && i+1 < len(argv) {
			out = argv[i+1]
		}
	}

	// The runtime: distroless static, non-root, the binary as entrypoint.
	if !regexp.MustCompile(`^gcr\.io/distroless/static(-debian\d+)?:nonroot$`).MatchString(d.final.from) {
		t.Errorf("runtime FROM %s, want gcr.io/distroless/static:nonroot", d.final.from)
	}
	for _, s := range []string{d.build.from, d.final.from} {
		if img := expandVars(t, s, d.args); strings.HasSuffix(img, ":latest") || !strings.Contains(img, ":") {
			t.Errorf("FROM %s: pin a tag, not latest", img)
		}
	}
	user, ok := d.final.last("USER")
	uid, _, _ := strings.Cut(user.args, ":")
	if !ok || uid == "0" || uid == "root" {
		t.Errorf("runtime USER %q: must be non-root", user.args)
	}
	if _, err := strconv.Atoi(uid); err != nil {
		t.Errorf("runtime USER %q: numeric, so that runAsNonRoot can verify it", user.args)
	}
	copied := false
	for _, in := range d.final.all("COPY") {
		f := strings.Fields(in.args)
		if slices.Contains(f, "--from="+d.build.name) && len(f) >= 2 && f[len(f)-2] == out && f[len(f)-1] == "/rewind" {
			copied = true
		}
	}
	if !copied {
		t.Errorf("the runtime does not COPY --from=%s %s /rewind", d.build.name, out)
	}
	var entrypoint, cmd []string
	if in, ok := d.final.last("ENTRYPOINT"); !ok || json.Unmarshal([]byte(in.args), &entrypoint) != nil {
		t.Errorf("ENTRYPOINT %q: want the exec form", in.args)
	}
	if in, ok := d.final.last("CMD"); !ok || json.Unmarshal([]byte(in.args), &cmd) != nil {
		t.Errorf("CMD %q: want the exec form", in.args)
	}
	if !slices.Equal(entrypoint, []string{"/rewind"}) {
		t.Errorf("ENTRYPOINT %q, want [\"/rewind\"]", entrypoint)
	}
	if !slices.Equal(cmd, []string{"serve", "--policy", "/etc/rewind/policy.yaml"}) {
		t.Errorf("CMD %q, want serve --policy /etc/rewind/policy.yaml", cmd)
	}

	// deployment.yaml runs this image as it is built.
	dep := loadDeployment(t)
	c := dep.Spec.Template.Spec.Containers[0]
	if got := flagValue(c.Args, "policy"); len(cmd) == 3 && got != cmd[2] {
		t.Errorf("deployment.yaml --policy %s, the image's default %s", got, cmd[2])
	}
	if sc := dep.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || strconv.FormatInt(*sc.RunAsUser, 10) != uid {
		t.Errorf("deployment.yaml runAsUser differs from the image's USER %s", uid)
	}
	if expose, ok := d.final.last("EXPOSE"); !ok || expose.args != strconv.Itoa(int(c.Ports[0].ContainerPort)) {
		t.Errorf("EXPOSE %q, deployment.yaml's port %d", expose.args, c.Ports[0].ContainerPort)
	}
}

// TestDockerfileBuild runs the Dockerfile's `go build` line as it stands
// (its environment, flags and package) for this machine's platform, and
// checks the binary: statically linked (no PT_INTERP, no DT_NEEDED),
// stripped, trimpath, built without cgo, and stamped with the version.
// docker build itself cannot run here (no Docker engine).
func TestDockerfileBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary (-short)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("checks an ELF binary")
	}
	d := loadDockerfile(t)
	root := repoRoot(t)
	const version = "v0.0.0-dockerfile-test"
	bin := filepath.Join(t.TempDir(), "rewind")
	vars := d.build.argDefaults()
	vars["VERSION"], vars["TARGETOS"], vars["TARGETARCH"] = version, runtime.GOOS, runtime.GOARCH
	env, argv := d.goBuildCommand(t)
	for i := range argv {
		argv[i] = expandVars(t, argv[i], vars)
		if i > 0 && argv[i-1] == "-o" {
			argv[i] = bin
		}
	}
	cmdEnv := os.Environ()
	for k, v := range d.build.env(t) {
		cmdEnv = append(cmdEnv, k+"="+v)
	}
	for _, kv := range env {
		cmdEnv = append(cmdEnv, expandVars(t, kv, vars))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, argv[0], argv[1:]...)
	build.Dir, build.Env = root, cmdEnv
	begin := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	t.Logf("%s: %s", strings.Join(argv, " "), time.Since(begin).Round(time.Millisecond))

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v (%v)", libs, err)
	}
	if f.Section(".dynamic") != nil {
		t.Error("the binary has a .dynamic section")
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -s did not strip it")
	}

	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build settings CGO_ENABLED=%q -trimpath=%q", settings["CGO_ENABLED"], settings["-trimpath"])
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(root+string(filepath.Separator))) {
		t.Errorf("the binary contains the build directory %s: not trimmed", root)
	}

	var stdout bytes.Buffer
	run := exec.CommandContext(ctx, bin, "version")
	run.Stdout, run.Stderr = &stdout, io.Discard
	if err := run.Run(); err != nil {
		t.Fatalf("rewind version: %v", err)
	}
	if got, want := strings.TrimSpace(stdout.String()), "rewind "+version; got != want {
		t.Errorf("rewind version printed %q, want %q: the -X path is wrong", got, want)
	}
}

// TestDockerignore: the build context keeps everything `go build
// ./cmd/rewind` reads (go.mod, go.sum, every Go and embedded file of the
// module's packages it depends on) and drops the repository's history and
// the tests.
func TestDockerignore(t *testing.T) {
	root := repoRoot(t)
	text, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	ig := parseDockerignore(string(text))
	cmd := exec.Command("go", "list", "-deps", "-json", "./cmd/rewind")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Dir        string
			Module     *struct{ Main bool }
			GoFiles    []string
			EmbedFiles []string
			OtherFiles []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || !p.Module.Main {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range slices.Concat(p.GoFiles, p.EmbedFiles, p.OtherFiles) {
			needed = append(needed, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %v", needed)
	}
	for _, f := range needed {
		if ig.excluded(f) {
			t.Errorf(".dockerignore excludes %s, which the build needs", f)
		}
	}
	for _, f := range []string{".git/HEAD", "deploy/rbac_test.go", "policy/testdata/x.yaml", "tools/kube/go.mod"} {
		if !ig.excluded(f) {
			t.Errorf(".dockerignore keeps %s in the build context", f)
		}
	}
}

// dockerignore is the matcher of the Docker build context's .dockerignore:
// patterns relative to the context root, filepath.Match syntax plus `**`;
// a pattern excludes a path or any directory above it; the last matching
// pattern decides, `!` re-includes.
type dockerignore []struct {
	re     *regexp.Regexp
	negate bool
}

func parseDockerignore(text string) dockerignore {
	var ig dockerignore
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		neg := strings.HasPrefix(l, "!")
		l = strings.TrimPrefix(l, "!")
		l = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(l)), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(l); i++ {
			switch c := l[i]; {
			case strings.HasPrefix(l[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(l[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		ig = append(ig, struct {
			re     *regexp.Regexp
			negate bool
		}{regexp.MustCompile(re.String()), neg})
	}
	return ig
}

func (ig dockerignore) excluded(path string) bool {
	excluded := false
	for _, p := range ig {
		match := false
		parts := strings.Split(path, "/")
		for i := 1; i <= len(parts) && !match; i++ {
			match = p.re.MatchString(strings.Join(parts[:i], "/"))
		}
		if match {
			excluded = !p.negate
		}
	}
	return excluded
}

func TestDockerignoreMatcher(t *testing.T) {
	ig := parseDockerignore("**/*_test.go\n/bin\nrewind\n**/testdata\n!keep/testdata\n")
	for path, want := range map[string]bool{
		"a/b_test.go": true, "b_test.go": true, "bin/x": true, "rewind": true, "cmd/rewind/main.go": false,
		"x/testdata/y": true, "testdata/y": true, "keep/testdata/z": false, "a/b.go": false,
	} {
		if got := ig.excluded(path); got != want {
			t.Errorf("excluded(%s) = %v, want %v", path, got, want)
		}
	}
}
