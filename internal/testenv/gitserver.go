package testenv

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// GitServer is a real Git server on loopback: Debian's `git http-backend`
// (smart HTTP, clone and push) behind Go's net/http/cgi, started with an
// argument vector, never a shell. Repositories are bare directories under
// a temp dir. With a username set it requires HTTP basic authentication,
// as a hosted Git server does.
type GitServer struct {
	URL string // http://127.0.0.1:PORT

	t        testing.TB
	git      string
	root     string // GIT_PROJECT_ROOT
	username string
	password string
}

// GitServerOptions configures StartGitServer.
type GitServerOptions struct {
	Username, Password string // "": no authentication
}

// StartGitServer starts the server; it is stopped by t.Cleanup. Without
// Debian's git the test is skipped (fails with CI set).
func StartGitServer(t testing.TB, opts GitServerOptions) *GitServer {
	t.Helper()
	gitBin := lookBinary(t, "git", "git")
	g := &GitServer{t: t, git: gitBin, root: t.TempDir(), username: opts.Username, password: opts.Password}
	backend := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + g.root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + g.root},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("git server: %v", err)
	}
	srv := &http.Server{Handler: g.auth(backend)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	g.URL = "http://" + l.Addr().String()
	return g
}

// auth wraps h with basic authentication when a username is set; the
// remote user is passed on to http-backend, which requires one for push.
func (g *GitServer) auth(h *cgi.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.username != "" {
			u, p, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(g.username)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(g.password)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		hh := *h
		hh.Env = append(append([]string(nil), h.Env...), "REMOTE_USER=tester")
		hh.ServeHTTP(w, r)
	})
}

// RepoURL is the clone URL of repository name.
func (g *GitServer) RepoURL(name string) string { return g.URL + "/" + name + ".git" }

// CreateRepo makes a bare repository whose branch main holds files (path →
// content) in one commit, and returns its clone URL.
func (g *GitServer) CreateRepo(name string, files map[string]string) string {
	g.t.Helper()
	bare := filepath.Join(g.root, name+".git")
	g.run("", "init", "--quiet", "--bare", "--initial-branch=main", bare)
	g.run(bare, "config", "http.receivepack", "true")
	work := g.t.TempDir()
	g.run("", "clone", "--quiet", bare, work)
	g.run(work, "checkout", "--quiet", "-b", "main")
	g.write(work, files)
	g.run(work, "add", "--all")
	g.run(work, "commit", "--quiet", "-m", "initial manifests")
	g.run(work, "push", "--quiet", "origin", "main")
	return g.RepoURL(name)
}

// Commit changes files on branch (as a developer's push) and returns the
// new commit's hash.
func (g *GitServer) Commit(name, branch, message string, files map[string]string) string {
	g.t.Helper()
	work := g.checkout(name, branch)
	g.write(work, files)
	g.run(work, "add", "--all")
	g.run(work, "commit", "--quiet", "-m", message)
	g.run(work, "push", "--quiet", "origin", branch)
	return strings.TrimSpace(g.run(work, "rev-parse", "HEAD"))
}

// Merge merges branch from into branch into (a merged pull request) and
// returns the merge commit's hash.
func (g *GitServer) Merge(name, from, into string) string {
	g.t.Helper()
	work := g.checkout(name, into)
	g.run(work, "fetch", "--quiet", "origin", from)
	g.run(work, "merge", "--quiet", "--no-ff", "-m", "Merge "+from, "FETCH_HEAD")
	g.run(work, "push", "--quiet", "origin", into)
	return strings.TrimSpace(g.run(work, "rev-parse", "HEAD"))
}

// Branches returns the repository's branches and their head commits.
func (g *GitServer) Branches(name string) map[string]string {
	g.t.Helper()
	out := g.run(filepath.Join(g.root, name+".git"), "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/")
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if b, h, ok := strings.Cut(l, " "); ok {
			m[b] = h
		}
	}
	return m
}

// BranchNames is Branches' names, sorted.
func (g *GitServer) BranchNames(name string) []string {
	var out []string
	for b := range g.Branches(name) {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

// File returns a file's content at a branch's head.
func (g *GitServer) File(name, branch, path string) string {
	g.t.Helper()
	return g.run(filepath.Join(g.root, name+".git"), "show", branch+":"+path)
}

// Log returns the commit messages on branch, newest first, separated by
// a line "---".
func (g *GitServer) Log(name, branch string) string {
	g.t.Helper()
	return g.run(filepath.Join(g.root, name+".git"), "log", "--format=%B%n---", branch)
}

func (g *GitServer) checkout(name, branch string) string {
	work := g.t.TempDir()
	g.run("", "clone", "--quiet", "--branch", branch, filepath.Join(g.root, name+".git"), work)
	return work
}

func (g *GitServer) write(dir string, files map[string]string) {
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
}

// run runs git with an argument vector in dir and returns its output.
func (g *GitServer) run(dir string, args ...string) string {
	g.t.Helper()
	cmd := exec.Command(g.git, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+g.root,
		"GIT_AUTHOR_NAME=Tester", "GIT_AUTHOR_EMAIL=tester@example.test",
		"GIT_COMMITTER_NAME=Tester", "GIT_COMMITTER_EMAIL=tester@example.test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
