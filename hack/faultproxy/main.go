// faultproxy stands between a Kubernetes client and its API server and breaks
// the path between them on command, for membrane's resilience e2e
// (e2e/test_resilience.sh). It terminates TLS with its own certificate,
// forwards every request to the API server (the client's bearer token passes
// through; watches stream), and a plain-HTTP control endpoint on loopback
// switches what it does:
//
//	POST /pass                   forward everything (ends /hold, /429 and what is armed)
//	POST /drop                   cut every open client connection (TCP reset), keep forwarding
//	POST /429?seconds=N          answer every request 429 with Retry-After: 1 for N seconds;
//	     [&drop=1]               cut the open connections first, so watches come back into it;
//	     [&on=METHOD:PATH]       only from the first request whose method is METHOD and whose
//	                             path starts with PATH (that request is the first answered 429)
//	POST /cut-reply?on=METHOD:PATH  forward the first such request, wait for the API server's
//	                             answer, then cut the client's connection instead of answering:
//	                             the write is done but the client does not know
//	POST /hold                   cut every open connection and stop listening until /pass
//	GET  /stats                  counters as JSON
//
// Every request is logged on stderr with what was done to it, so a test can
// read which lists and watches (with which resourceVersion) the client sent.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

type proxy struct {
	addr   string // the address the client connects to, kept across /hold
	tlsCfg *tls.Config
	srv    *http.Server
	fwd    *httputil.ReverseProxy

	mu       sync.Mutex
	ln       net.Listener // nil while held
	conns    map[*trackedConn]struct{}
	mode     string // pass, 429, hold
	until429 time.Time
	stats    stats

	// armed faults, each fired by the first request that matches it
	on429    *match
	secs429  int
	cutReply *match
}

// match is METHOD:PATH-PREFIX.
type match struct{ method, prefix string }

func parseMatch(s string) (*match, error) {
	m, p, ok := strings.Cut(s, ":")
	if !ok || m == "" || !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("on=%q is not METHOD:/path-prefix", s)
	}
	return &match{strings.ToUpper(m), p}, nil
}

func (m *match) matches(r *http.Request) bool {
	return m != nil && r.Method == m.method && strings.HasPrefix(r.URL.Path, m.prefix)
}

type connKey struct{}

type stats struct {
	Mode       string `json:"mode"`
	Requests   int64  `json:"requests"`
	Lists      int64  `json:"lists"`
	Watches    int64  `json:"watches"`
	TooMany    int64  `json:"answered429"`
	Dropped    int64  `json:"dropped"`
	Open       int    `json:"open"`
	Accepted   int64  `json:"accepted"`
	Forwarded  int64  `json:"forwarded"`
	CutReplies int64  `json:"cutReplies"`
	Armed      bool   `json:"armed"`
}

// trackedConn is one accepted TCP connection, removed from the set when closed.
type trackedConn struct {
	net.Conn
	p    *proxy
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	})
	return c.Conn.Close()
}

// trackingListener records every connection it accepts.
type trackingListener struct {
	net.Listener
	p *proxy
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, p: l.p}
	l.p.mu.Lock()
	l.p.conns[tc] = struct{}{}
	l.p.stats.Accepted++
	l.p.mu.Unlock()
	return tc, nil
}

// listen opens the client-facing listener (again, after /hold) and serves it.
func (p *proxy) listen() error {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may take a moment to be free again after /hold
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	p.addr = ln.Addr().String()
	p.ln = ln
	go func() {
		err := p.srv.Serve(tls.NewListener(trackingListener{ln, p}, p.tlsCfg))
		if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("serve: %v", err)
		}
	}()
	return nil
}

// dropLocked cuts every open client connection with a reset, as a broken network would.
func (p *proxy) dropLocked() int {
	n := 0
	for c := range p.conns {
		if tcp, ok := c.Conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
		_ = c.Conn.Close()
		delete(p.conns, c)
		n++
	}
	p.stats.Dropped += int64(n)
	return n
}

func (p *proxy) currentMode() string {
	if p.mode == "429" && time.Now().After(p.until429) {
		p.mode = "pass"
		log.Printf("mode pass (the 429 period is over)")
	}
	return p.mode
}

func isWatch(r *http.Request) bool {
	w := r.URL.Query().Get("watch")
	return w == "1" || w == "true"
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	watch := isWatch(r)
	p.mu.Lock()
	if p.on429.matches(r) && p.mode == "pass" {
		p.mode = "429"
		p.until429 = time.Now().Add(time.Duration(p.secs429) * time.Second)
		p.on429 = nil
		log.Printf("mode 429 for %d s, from %s %s on", p.secs429, r.Method, r.URL.Path)
	}
	cut := false
	if p.cutReply.matches(r) && p.mode == "pass" {
		cut = true
		p.cutReply = nil
		p.stats.CutReplies++
	}
	mode := p.currentMode()
	p.stats.Requests++
	if r.Method == http.MethodGet && watch {
		p.stats.Watches++
	} else if r.Method == http.MethodGet {
		p.stats.Lists++
	}
	if mode == "429" {
		p.stats.TooMany++
	} else {
		p.stats.Forwarded++
	}
	p.mu.Unlock()

	log.Printf("%s %s %s", mode, r.Method, r.URL.RequestURI())
	if mode == "429" {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
			`"message":"too many requests, please try again later","reason":"TooManyRequests",` +
			`"details":{"retryAfterSeconds":1},"code":429}` + "\n"))
		return
	}
	if cut {
		// the API server does the request; its answer never reaches the client
		rec := httptest.NewRecorder()
		p.fwd.ServeHTTP(rec, r)
		log.Printf("cut the reply (%d) to %s %s", rec.Code, r.Method, r.URL.RequestURI())
		if c, ok := r.Context().Value(connKey{}).(*tls.Conn); ok {
			if tc, ok := c.NetConn().(*trackedConn); ok {
				if tcp, ok := tc.Conn.(*net.TCPConn); ok {
					_ = tcp.SetLinger(0)
				}
				_ = tc.Close()
			}
		}
		return
	}
	p.fwd.ServeHTTP(w, r)
}

func (p *proxy) control(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stats" && r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	switch r.URL.Path {
	case "/pass":
		if p.ln == nil {
			if err := p.listen(); err != nil {
				p.mu.Unlock()
				http.Error(w, "cannot listen again: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		p.mode = "pass"
		p.on429, p.cutReply = nil, nil
		log.Printf("mode pass")
	case "/drop":
		log.Printf("dropped %d connections", p.dropLocked())
	case "/429":
		secs, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || secs <= 0 {
			p.mu.Unlock()
			http.Error(w, "seconds=N (N > 0) is needed", http.StatusBadRequest)
			return
		}
		if p.mode == "hold" {
			p.mu.Unlock()
			http.Error(w, "held: /pass first", http.StatusConflict)
			return
		}
		if on := r.URL.Query().Get("on"); on != "" {
			m, err := parseMatch(on)
			if err != nil {
				p.mu.Unlock()
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			p.on429, p.secs429 = m, secs
			log.Printf("armed: 429 for %d s from the first %s %s...", secs, m.method, m.prefix)
			break
		}
		p.mode = "429"
		p.until429 = time.Now().Add(time.Duration(secs) * time.Second)
		log.Printf("mode 429 for %d s", secs)
		if r.URL.Query().Get("drop") == "1" {
			log.Printf("dropped %d connections", p.dropLocked())
		}
	case "/cut-reply":
		m, err := parseMatch(r.URL.Query().Get("on"))
		if err != nil {
			p.mu.Unlock()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.cutReply = m
		log.Printf("armed: cut the reply to the first %s %s...", m.method, m.prefix)
	case "/hold":
		if p.ln != nil {
			_ = p.ln.Close()
			p.ln = nil
		}
		p.mode = "hold"
		log.Printf("mode hold: not listening, dropped %d connections", p.dropLocked())
	case "/stats":
	default:
		p.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	p.currentMode()
	s := p.stats
	s.Mode = p.mode
	s.Open = len(p.conns)
	s.Armed = p.on429 != nil || p.cutReply != nil
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address the client connects to (TLS)")
	controlAddr := flag.String("control", "127.0.0.1:0", "address of the plain-HTTP control endpoint")
	upstream := flag.String("upstream", "", "the API server, https://host:port")
	upstreamCA := flag.String("upstream-ca", "", "PEM file of the CA that signed the API server's certificate")
	certFile := flag.String("cert", "", "PEM certificate the proxy presents")
	keyFile := flag.String("key", "", "PEM key of that certificate")
	flag.Parse()
	log.SetFlags(log.Ldate | log.Ltime | log.Lmicroseconds | log.LUTC)
	log.SetPrefix("faultproxy: ")
	if *upstream == "" || *upstreamCA == "" || *certFile == "" || *keyFile == "" {
		fmt.Fprintln(os.Stderr, "faultproxy: -upstream, -upstream-ca, -cert and -key are needed")
		os.Exit(2)
	}
	target, err := url.Parse(*upstream)
	if err != nil || target.Scheme != "https" || target.Host == "" {
		log.Fatalf("-upstream %q is not https://host:port", *upstream)
	}
	caPEM, err := os.ReadFile(*upstreamCA)
	if err != nil {
		log.Fatalf("reading -upstream-ca: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		log.Fatalf("-upstream-ca %s holds no PEM certificate", *upstreamCA)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("loading -cert/-key: %v", err)
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	p := &proxy{
		addr:   *listen,
		tlsCfg: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12},
		conns:  map[*trackedConn]struct{}{},
		mode:   "pass",
	}
	p.fwd = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target) // the Authorization header passes through as it came
		},
		Transport:     transport,
		FlushInterval: -1, // watches: every event as it comes
		ErrorLog:      log.Default(),
	}
	p.srv = &http.Server{
		Handler:  p,
		ErrorLog: log.New(os.Stderr, "faultproxy: http: ", log.LstdFlags),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c) // the *tls.Conn, for /cut-reply
		},
	}
	p.mu.Lock()
	err = p.listen()
	p.mu.Unlock()
	if err != nil {
		log.Fatalf("listen %s: %v", *listen, err)
	}
	cln, err := net.Listen("tcp", *controlAddr)
	if err != nil {
		log.Fatalf("listen %s: %v", *controlAddr, err)
	}
	fmt.Printf("faultproxy listening on https://%s, control on http://%s\n", p.addr, cln.Addr())
	_ = os.Stdout.Sync()
	log.Fatal(http.Serve(cln, http.HandlerFunc(p.control)))
}
