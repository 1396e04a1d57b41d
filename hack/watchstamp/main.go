// watchstamp: watches of the Kubernetes API in one process, each event stamped
// as it arrives, for the side-by-side latency benchmark (hack/bench-peers.sh).
// A benchmark's sample is the time between an event of one watch and an event
// of another. A kubectl in the background per watch, with a shell loop
// stamping its lines, took the two stamps of a sample in four processes, each
// waiting for its own turn on a busy machine's CPU; here every watch is a
// goroutine of one process on one connection, and an event is stamped as soon
// as its line is read.
//
//	watchstamp KUBECONFIG.json OUT API-PATH POINTERS [OUT API-PATH POINTERS]...
//
// KUBECONFIG.json: `kubectl config view --raw --flatten --minify -o json`.
// API-PATH: a collection's path with its query, e.g.
// /apis/apps/v1/namespaces/ns/deployments?fieldSelector=metadata.name%3Dapi.
// POINTERS: comma-separated JSON pointers (RFC 6901) into each event's object.
// Each event appends to OUT the line "SECONDS.MICROS V1|V2|..." (the wall
// clock, as bash's $EPOCHREALTIME prints it; a value absent prints empty,
// strings bare, anything else as JSON), as `kubectl get -w -o jsonpath` with
// a shell loop stamping its lines wrote it. The watch starts from the current
// state (an event per existing object) and, when the server ends it, goes on
// from the last resourceVersion seen. It runs until it is killed, and exits
// with 2, saying why, when the API server refuses a watch (any answer but 200)
// or sends a line that is not a watch event: no line is written for those.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

type kubeconfig struct {
	Clusters []struct {
		Cluster struct {
			Server string `json:"server"`
			CA     string `json:"certificate-authority-data"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		User struct {
			Cert  string `json:"client-certificate-data"`
			Key   string `json:"client-key-data"`
			Token string `json:"token"`
		} `json:"user"`
	} `json:"users"`
}

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "watchstamp: "+format+"\n", a...)
	os.Exit(2)
}

func client(path string) (*http.Client, string, string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	var kc kubeconfig
	if err := json.Unmarshal(raw, &kc); err != nil || len(kc.Clusters) != 1 || len(kc.Users) != 1 {
		die("%s: want one cluster and one user (kubectl config view --raw --flatten --minify -o json)", path)
	}
	c, u := kc.Clusters[0].Cluster, kc.Users[0].User
	cfg := &tls.Config{}
	if c.CA != "" {
		pem, err := base64.StdEncoding.DecodeString(c.CA)
		if err != nil {
			die("certificate-authority-data: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(pem)
	}
	if u.Cert != "" {
		cert, err1 := base64.StdEncoding.DecodeString(u.Cert)
		key, err2 := base64.StdEncoding.DecodeString(u.Key)
		pair, err3 := tls.X509KeyPair(cert, key)
		if err1 != nil || err2 != nil || err3 != nil {
			die("the client certificate: %v %v %v", err1, err2, err3)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	t := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	return &http.Client{Transport: t}, strings.TrimRight(c.Server, "/"), u.Token
}

// pointer: the value at an RFC 6901 pointer into obj, or nil
func pointer(obj map[string]any, p string) any {
	var v any = obj
	if p == "" {
		return v
	}
	for _, tok := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := v.(type) {
		case map[string]any:
			v = x[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

type event struct {
	Type   string         `json:"type"`
	Object map[string]any `json:"object"`
}

func watch(c *http.Client, server, token, out, path string, pointers []string) {
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		die("%v", err)
	}
	rv := ""
	for {
		u, err := url.Parse(server + path)
		if err != nil {
			die("%s: %v", path, err)
		}
		q := u.Query()
		q.Set("watch", "1")
		if rv != "" {
			q.Set("resourceVersion", rv)
		}
		u.RawQuery = q.Encode()
		req, _ := http.NewRequest("GET", u.String(), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			fmt.Fprintf(os.Stderr, "watchstamp: %s: %v (trying again)\n", path, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			// a wrong path, a missing resource or refused credentials: nothing to watch, and no line may say otherwise
			resp.Body.Close()
			die("%s: the API server answered %s", path, resp.Status)
		}
		r := bufio.NewReaderSize(resp.Body, 1<<20)
		for {
			line, err := r.ReadBytes('\n')
			now := time.Now()
			if len(line) > 0 {
				var ev event
				if json.Unmarshal(line, &ev) != nil || ev.Type == "" || ev.Object == nil {
					die("%s: not a watch event: %.200s", path, line)
				}
				if ev.Type == "ERROR" {
					fmt.Fprintf(os.Stderr, "watchstamp: %s: %s (starting again from the current state)\n", path,
						text(pointer(ev.Object, "/message")))
					rv = ""
					break
				}
				if v := text(pointer(ev.Object, "/metadata/resourceVersion")); v != "" {
					rv = v
				}
				if ev.Type != "BOOKMARK" {
					vals := make([]string, len(pointers))
					for i, p := range pointers {
						vals[i] = text(pointer(ev.Object, p))
					}
					fmt.Fprintf(f, "%d.%06d %s\n", now.Unix(), now.Nanosecond()/1000, strings.Join(vals, "|"))
				}
			}
			if err != nil {
				break
			}
		}
		resp.Body.Close()
	}
}

func main() {
	if len(os.Args) < 5 || (len(os.Args)-2)%3 != 0 {
		die("usage: watchstamp KUBECONFIG.json OUT API-PATH POINTERS [OUT API-PATH POINTERS]...")
	}
	c, server, token := client(os.Args[1])
	var wg sync.WaitGroup
	for i := 2; i+2 < len(os.Args); i += 3 {
		wg.Add(1)
		go func(out, path, pointers string) {
			defer wg.Done()
			watch(c, server, token, out, path, strings.Split(pointers, ","))
		}(os.Args[i], os.Args[i+1], os.Args[i+2])
	}
	wg.Wait()
}
