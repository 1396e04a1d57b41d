// ociregistry serves go-containerregistry's registry (pkg/registry) on
// loopback with its OCI 1.1 referrers API turned on, which the CNCF
// distribution registry (hack/registry.sh) does not serve: cosign v3 then
// writes its bundles as referrers (GET /v2/<name>/referrers/<digest>) instead
// of the referrers tag fallback, and the fixtures and the e2e exercise both
// (test/fixtures/cosign/regenerate.sh, e2e/registry.sh). Manifests are kept in
// memory, blobs under -disk. Built by hack/gotool.sh.
//
// go-containerregistry's referrers answer gives each referrer the artifactType
// of its config's media type, where the OCI distribution spec says the
// manifest's own artifactType when it has one (cosign v3's bundles have config
// application/vnd.oci.empty.v1+json and artifactType
// application/vnd.dev.sigstore.bundle.v0.3+json), and ignores the artifactType
// filter. This wrapper answers as the spec says: the manifest's artifactType
// when it has one, and the filter applied (with OCI-Filters-Applied).
// -raw-referrers serves go-containerregistry's answer unchanged.
//
// Once listening it prints "ociregistry listening on http://127.0.0.1:<port>"
// on stdout; requests are logged on stderr.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	disk := flag.String("disk", "", "directory for the blobs (default: memory)")
	raw := flag.Bool("raw-referrers", false, "serve go-containerregistry's referrers answer unchanged")
	flag.Parse()

	opts := []registry.Option{registry.WithReferrersSupport(true), registry.Logger(log.New(os.Stderr, "", log.LstdFlags))}
	if *disk != "" {
		if err := os.MkdirAll(*disk, 0o755); err != nil {
			log.Fatalf("ociregistry: %v", err)
		}
		opts = append(opts, registry.WithBlobHandler(registry.NewDiskBlobHandler(*disk)))
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("ociregistry: %v", err)
	}
	fmt.Printf("ociregistry listening on http://%s\n", ln.Addr())
	os.Stdout.Sync()
	var h http.Handler = registry.New(opts...)
	if !*raw {
		h = conforming{h}
	}
	log.Fatal(http.Serve(ln, h))
}

// conforming answers GET /v2/<name>/referrers/<digest> as the OCI distribution spec says
type conforming struct{ inner http.Handler }

func (c conforming) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	elems := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != http.MethodGet || len(elems) < 4 || elems[0] != "v2" || elems[len(elems)-2] != "referrers" {
		c.inner.ServeHTTP(w, r)
		return
	}
	name := strings.Join(elems[1:len(elems)-2], "/")
	rec := httptest.NewRecorder()
	c.inner.ServeHTTP(rec, r)
	var index struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType"`
		Manifests     []map[string]any `json:"manifests"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &index) != nil {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	want := r.URL.Query().Get("artifactType")
	kept := []map[string]any{}
	for _, d := range index.Manifests {
		digest, _ := d["digest"].(string)
		mt, _ := d["mediaType"].(string)
		req := httptest.NewRequest(http.MethodGet, "/v2/"+name+"/manifests/"+digest, nil)
		req.Header.Set("Accept", mt)
		mrec := httptest.NewRecorder()
		c.inner.ServeHTTP(mrec, req)
		var m struct {
			ArtifactType string `json:"artifactType"`
		}
		if mrec.Code == http.StatusOK && json.Unmarshal(mrec.Body.Bytes(), &m) == nil && m.ArtifactType != "" {
			d["artifactType"] = m.ArtifactType
		}
		if want != "" && d["artifactType"] != want {
			continue
		}
		kept = append(kept, d)
	}
	index.Manifests = kept
	body, _ := json.Marshal(index)
	w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	if want != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
