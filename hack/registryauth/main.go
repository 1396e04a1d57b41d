// registryauth: the registry-side credentials of the image.verify e2e and the
// demo (e2e/registry.sh), for the CNCF distribution registry run on loopback.
// Built by hack/gotool.sh.
//
//	registryauth htpasswd USER PASSWORD
//	    prints one htpasswd line, USER:<bcrypt of PASSWORD> (the registry's
//	    htpasswd auth accepts bcrypt only)
//	registryauth token -listen 127.0.0.1:0 -cert C -key K -user U -password P
//	        -issuer I -service S [-tls-cert TC -tls-key TK]
//	    the token server of the registry's `auth: token` (the realm of its
//	    WWW-Authenticate: Bearer challenge): GET or POST /token with HTTP basic
//	    credentials U:P (or, POST, the OAuth2 password grant's form) answers
//	    {"token", "access_token", "expires_in", "issued_at"}, a JWT signed ES256
//	    with the ECDSA P-256 key K whose certificate C rides in its x5c header:
//	    the registry trusts it when C is in its rootcertbundle. The token grants
//	    every action the scope parameters ask for (scope=repository:NAME:pull,push);
//	    wrong or missing credentials are answered 401. With -tls-cert/-tls-key it
//	    serves HTTPS. Once listening it prints
//	    "registryauth listening on http(s)://127.0.0.1:<port>" on stdout; each
//	    request is logged on stderr with its answer (never a credential).
package main

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "htpasswd":
		if len(os.Args) != 4 {
			usage()
		}
		h, err := bcrypt.GenerateFromPassword([]byte(os.Args[3]), bcrypt.DefaultCost)
		if err != nil {
			log.Fatalf("registryauth: bcrypt: %v", err)
		}
		fmt.Printf("%s:%s\n", os.Args[2], h)
	case "token":
		token(os.Args[2:])
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: registryauth htpasswd USER PASSWORD | registryauth token -cert C -key K -user U -password P -issuer I -service S [-listen ADDR] [-tls-cert TC -tls-key TK]")
	os.Exit(2)
}

type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func token(args []string) {
	fs := flag.NewFlagSet("token", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	certFile := fs.String("cert", "", "PEM certificate of the signing key (in the registry's rootcertbundle)")
	keyFile := fs.String("key", "", "PEM ECDSA P-256 private key that signs the tokens")
	user := fs.String("user", "", "the one user name accepted")
	password := fs.String("password", "", "its password")
	issuer := fs.String("issuer", "registryauth", "the tokens' iss (the registry's auth.token.issuer)")
	service := fs.String("service", "", "the tokens' aud (the registry's auth.token.service)")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this certificate")
	tlsKey := fs.String("tls-key", "", "and this key")
	fs.Parse(args)
	if *certFile == "" || *keyFile == "" || *user == "" || *password == "" || *service == "" {
		log.Fatal("registryauth token: -cert, -key, -user, -password and -service are required")
	}
	certDER := readPEM(*certFile, "CERTIFICATE")
	keyDER := readPEM(*keyFile, "")
	var key *ecdsa.PrivateKey
	if k, err := x509.ParseECPrivateKey(keyDER); err == nil {
		key = k
	} else if k, err := x509.ParsePKCS8PrivateKey(keyDER); err == nil {
		if ek, ok := k.(*ecdsa.PrivateKey); ok {
			key = ek
		}
	}
	if key == nil || key.Curve.Params().BitSize != 256 {
		log.Fatalf("registryauth token: %s is not an ECDSA P-256 private key", *keyFile)
	}

	http.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok && r.Method == http.MethodPost {
			r.ParseForm()
			if r.PostForm.Get("grant_type") == "password" {
				u, p, ok = r.PostForm.Get("username"), r.PostForm.Get("password"), true
			}
		}
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(*user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(*password)) != 1 {
			log.Printf("%s %s -> 401 (credentials present: %v)", r.Method, r.URL.Path, ok)
			w.Header().Set("WWW-Authenticate", `Basic realm="registryauth"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		if r.Method == http.MethodPost {
			r.ParseForm()
			q = r.Form
		}
		if q.Get("service") != "" && q.Get("service") != *service {
			log.Printf("%s %s service %q -> 400", r.Method, r.URL.Path, q.Get("service"))
			http.Error(w, "unknown service", http.StatusBadRequest)
			return
		}
		grants := []access{}
		for _, s := range q["scope"] {
			for _, one := range strings.Split(s, " ") {
				// repository:NAME:ACTIONS (NAME may hold no colon here; a port would be in the host, not the name)
				parts := strings.Split(one, ":")
				if len(parts) != 3 {
					continue
				}
				grants = append(grants, access{Type: parts[0], Name: parts[1], Actions: strings.Split(parts[2], ",")})
			}
		}
		now := time.Now()
		claims := map[string]any{
			"iss": *issuer, "sub": u, "aud": *service,
			"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
			"jti": randomID(), "access": grants,
		}
		tok, err := sign(key, certDER, claims)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"token": tok, "access_token": tok, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339),
		})
		log.Printf("%s %s scope %q -> 200", r.Method, r.URL.Path, q["scope"])
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("registryauth token: %v", err)
	}
	scheme := "http"
	if *tlsCert != "" {
		scheme = "https"
	}
	fmt.Printf("registryauth listening on %s://%s\n", scheme, ln.Addr())
	os.Stdout.Sync()
	if *tlsCert != "" {
		log.Fatal(http.ServeTLS(ln, nil, *tlsCert, *tlsKey))
	}
	log.Fatal(http.Serve(ln, nil))
}

func readPEM(file, typ string) []byte {
	b, err := os.ReadFile(file)
	if err != nil {
		log.Fatalf("registryauth: %v", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			log.Fatalf("registryauth: %s holds no PEM block%s", file, map[bool]string{true: "", false: " of type " + typ}[typ == ""])
		}
		if typ == "" || blk.Type == typ {
			if typ == "" && blk.Type == "EC PARAMETERS" {
				continue
			}
			return blk.Bytes
		}
	}
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign makes a compact JWS (ES256: the raw 32-byte r and s) with the certificate in x5c
func sign(key *ecdsa.PrivateKey, certDER []byte, claims map[string]any) (string, error) {
	header, _ := json.Marshal(map[string]any{
		"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(certDER)},
	})
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	in := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	fill(sig[:32], r)
	fill(sig[32:], s)
	return in + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func fill(dst []byte, n *big.Int) { n.FillBytes(dst) }
