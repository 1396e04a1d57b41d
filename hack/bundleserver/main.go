// bundleserver serves the files of one directory over HTTPS on loopback, for
// membrane's PolicyBundle e2e and the demo (e2e/test_policy.sh, hack/demo.sh):
// the bundles `opa build` made, fetched by the operator as it fetches a real
// bundle server's. It can also listen for plain HTTP on a second port, ask for
// a bearer token, and redirect:
//
//	GET /<file>                   the file (regular files only; no listings)
//	GET /redirect/<N>/<file>      a chain of N redirects (302, https to https) ending at /<file>
//	GET /to-http/<file>           one redirect from https to the plain-HTTP port's /<file>
//	GET /status/<code>/<any>      an answer with that status (e.g. 404, 500) and no file
//	GET /slow/<KiB/s>/<file>      the file, sent at that rate (HEAD: its headers at once)
//	GET /cut/<bytes>/<file>       the file's headers (its whole length), its first <bytes>, then the
//	                              connection is closed: a transfer cut short
//
// The file may be large and sparse (truncate -s 1G): it is streamed from disk.
// The DatasetPromotion e2e (e2e/test_dataset.sh) serves its artifacts and
// catalog documents with it, over -http: the operator trusts the system's CAs
// only for datasets.
//
// With -token T, every request whose path starts with -token-path (default
// "/": all of them) must carry "Authorization: Bearer T"; it is answered 401
// otherwise. The token is never logged.
//
// Once listening it prints "bundleserver listening on https://127.0.0.1:<port>"
// (and ", http on http://127.0.0.1:<port>" with -http) on stdout; every request
// is logged on stderr with its answer.
package main

import (
	"crypto/subtle"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type server struct {
	dir       string
	token     string
	tokenPath string
	httpsBase string // https://127.0.0.1:<port>
	httpBase  string // http://127.0.0.1:<port>, or "" without -http
}

// statusRecorder keeps the status code for the log line.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *server) handler(scheme string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		s.serve(rec, r, scheme)
		log.Printf("%s %s %s -> %d", scheme, r.Method, r.URL.RequestURI(), rec.code)
	})
}

func (s *server) serve(w http.ResponseWriter, r *http.Request, scheme string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if s.token != "" && strings.HasPrefix(p, s.tokenPath) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bundleserver"`)
			http.Error(w, "a bearer token is required", http.StatusUnauthorized)
			return
		}
	}
	switch {
	case strings.HasPrefix(p, "/redirect/"):
		rest := strings.TrimPrefix(p, "/redirect/")
		nstr, file, ok := strings.Cut(rest, "/")
		n, err := strconv.Atoi(nstr)
		if !ok || err != nil || n < 1 || n > 100 || file == "" {
			http.Error(w, "want /redirect/<1..100>/<file>", http.StatusBadRequest)
			return
		}
		next := "/" + file
		if n > 1 {
			next = fmt.Sprintf("/redirect/%d/%s", n-1, file)
		}
		http.Redirect(w, r, s.base(scheme)+next, http.StatusFound)
	case strings.HasPrefix(p, "/status/"):
		code, _, _ := strings.Cut(strings.TrimPrefix(p, "/status/"), "/")
		n, err := strconv.Atoi(code)
		if err != nil || n < 200 || n > 599 {
			http.Error(w, "want /status/<200..599>/...", http.StatusBadRequest)
			return
		}
		http.Error(w, http.StatusText(n), n)
	case strings.HasPrefix(p, "/slow/"), strings.HasPrefix(p, "/cut/"):
		kind, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		nstr, file, ok := strings.Cut(rest, "/")
		n, err := strconv.ParseInt(nstr, 10, 64)
		if !ok || err != nil || n < 0 || file == "" || (kind == "slow" && n < 1) {
			http.Error(w, "want /slow/<KiB per s>/<file> or /cut/<bytes>/<file>", http.StatusBadRequest)
			return
		}
		if kind == "slow" {
			s.file(&throttled{ResponseWriter: w, rate: n * 1024, start: time.Now()}, r, "/"+file)
		} else {
			s.cut(w, r, "/"+file, n)
		}
	case strings.HasPrefix(p, "/to-http/"):
		if s.httpBase == "" {
			http.Error(w, "/to-http/ needs the plain-HTTP port (-http)", http.StatusNotImplemented)
			return
		}
		http.Redirect(w, r, s.httpBase+"/"+strings.TrimPrefix(p, "/to-http/"), http.StatusFound)
	default:
		s.file(w, r, p)
	}
}

func (s *server) base(scheme string) string {
	if scheme == "http" {
		return s.httpBase
	}
	return s.httpsBase
}

// file answers one regular file under dir; anything else is 404.
func (s *server) file(w http.ResponseWriter, r *http.Request, p string) {
	clean := path.Clean("/" + p)
	full := filepath.Join(s.dir, filepath.FromSlash(clean))
	f, err := os.Open(full)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// throttled writes at most rate bytes a second.
type throttled struct {
	http.ResponseWriter
	rate    int64
	written int64
	start   time.Time
}

func (t *throttled) Write(b []byte) (int, error) {
	n, err := t.ResponseWriter.Write(b)
	t.written += int64(n)
	due := t.start.Add(time.Duration(float64(t.written) / float64(t.rate) * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		if f, ok := t.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		time.Sleep(d)
	}
	return n, err
}

func (t *throttled) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// cut announces the whole file and sends only its first n bytes, then drops the connection.
func (s *server) cut(w http.ResponseWriter, r *http.Request, p string, n int64) {
	full := filepath.Join(s.dir, filepath.FromSlash(path.Clean("/"+p)))
	f, err := os.Open(full)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = io.CopyN(w, f, min(n, st.Size()))
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	panic(http.ErrAbortHandler) // the connection closes with the body short
}

// loopback refuses any listen address that is not on the loopback range.
func loopback(flagName, addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		log.Fatalf("-%s %q is not host:port: %v", flagName, addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Fatalf("-%s %q: bundleserver listens on loopback only (127.0.0.1:0, [::1]:0)", flagName, addr)
	}
	return addr
}

func baseURL(scheme string, ln net.Listener) string {
	return scheme + "://" + ln.Addr().String()
}

func main() {
	dir := flag.String("dir", "", "directory whose files are served")
	listen := flag.String("listen", "127.0.0.1:0", "HTTPS address (loopback; port 0: any free port)")
	httpListen := flag.String("http", "", "also serve plain HTTP on this address (loopback), e.g. 127.0.0.1:0")
	certFile := flag.String("cert", "", "PEM certificate the server presents")
	keyFile := flag.String("key", "", "PEM key of that certificate")
	token := flag.String("token", "", "bearer token required for the paths under -token-path (default: none required)")
	tokenPath := flag.String("token-path", "/", "path prefix that -token protects")
	flag.Parse()
	log.SetFlags(log.Ldate | log.Ltime | log.Lmicroseconds | log.LUTC)
	log.SetPrefix("bundleserver: ")
	if *dir == "" || *certFile == "" || *keyFile == "" {
		fmt.Fprintln(os.Stderr, "bundleserver: -dir, -cert and -key are needed")
		os.Exit(2)
	}
	if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
		fmt.Fprintf(os.Stderr, "bundleserver: -dir %s is not a directory\n", *dir)
		os.Exit(2)
	}
	if !strings.HasPrefix(*tokenPath, "/") {
		fmt.Fprintf(os.Stderr, "bundleserver: -token-path %q must start with /\n", *tokenPath)
		os.Exit(2)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("loading -cert/-key: %v", err)
	}
	s := &server{dir: *dir, token: *token, tokenPath: *tokenPath}

	ln, err := net.Listen("tcp", loopback("listen", *listen))
	if err != nil {
		log.Fatalf("listen %s: %v", *listen, err)
	}
	s.httpsBase = baseURL("https", ln)
	var hln net.Listener
	if *httpListen != "" {
		if hln, err = net.Listen("tcp", loopback("http", *httpListen)); err != nil {
			log.Fatalf("listen %s: %v", *httpListen, err)
		}
		s.httpBase = baseURL("http", hln)
	}
	errs := make(chan error, 2)
	tlsSrv := &http.Server{
		Handler:           s.handler("https"),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(os.Stderr, "bundleserver: https: ", log.LstdFlags),
	}
	go func() { errs <- tlsSrv.ServeTLS(ln, "", "") }()
	if hln != nil {
		plain := &http.Server{Handler: s.handler("http"), ReadHeaderTimeout: 10 * time.Second}
		go func() { errs <- plain.Serve(hln) }()
		fmt.Printf("bundleserver listening on %s, http on %s\n", s.httpsBase, s.httpBase)
	} else {
		fmt.Printf("bundleserver listening on %s\n", s.httpsBase)
	}
	_ = os.Stdout.Sync()
	log.Fatal(<-errs)
}
