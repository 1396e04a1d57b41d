// gitserver serves the Git repositories under one directory over smart HTTP
// on loopback, for membrane's GitOps e2e (e2e/test_gitops.sh): Flux's
// source-controller clones from it as it would from a Git host. It runs
// Debian's `git http-backend` as a CGI program (net/http/cgi), so the
// protocol is git's own; clones and fetches only (pushes are refused, the test
// commits in the served repositories directly).
//
//	gitserver -root DIR [-listen 127.0.0.1:0]
//
// Once listening it prints "gitserver listening on http://127.0.0.1:<port>" on
// stdout; a repository DIR/NAME.git (bare) or DIR/NAME (with a work tree) is
// then at http://127.0.0.1:<port>/NAME.git or /NAME. Every request is logged
// on stderr with its answer.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func main() {
	root := flag.String("root", "", "directory holding the repositories (required)")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback only)")
	backend := flag.String("backend", "", "path of git-http-backend (default: from `git --exec-path`)")
	flag.Parse()
	if *root == "" {
		fmt.Fprintln(os.Stderr, "gitserver: -root DIR is required: the directory holding the repositories")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*root)
	if err != nil {
		log.Fatalf("gitserver: -root %s: %v", *root, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		log.Fatalf("gitserver: -root %s is not a directory", abs)
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("gitserver: -listen %s: give a loopback address such as 127.0.0.1:0", *listen)
	}
	if *backend == "" {
		out, err := exec.Command("git", "--exec-path").Output()
		if err != nil {
			log.Fatalf("gitserver: git --exec-path: %v (is git installed?)", err)
		}
		*backend = filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	}
	if _, err := os.Stat(*backend); err != nil {
		log.Fatalf("gitserver: %s: %v", *backend, err)
	}
	h := &cgi.Handler{
		Path: *backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + abs,
			"GIT_HTTP_EXPORT_ALL=1",
			// the test's repositories belong to whoever runs the test
			"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*",
		},
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("gitserver: listen %s: %v", *listen, err)
	}
	fmt.Printf("gitserver listening on http://%s\n", ln.Addr())
	os.Stdout.Sync()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") ||
			r.URL.Query().Get("service") == "git-receive-pack" {
			http.Error(w, "pushes are refused: commit in the served repository", http.StatusForbidden)
			log.Printf("%s %s -> 403", r.Method, r.URL)
			return
		}
		rec := &recorder{ResponseWriter: w, code: 200}
		h.ServeHTTP(rec, r)
		log.Printf("%s %s -> %d", r.Method, r.URL, rec.code)
	})}
	log.Fatal(srv.Serve(ln))
}
