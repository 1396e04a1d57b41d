// ociregistry serves go-containerregistry's registry (pkg/registry) on
// loopback with its OCI 1.1 referrers API turned on, which the CNCF
// distribution registry (hack/registry.sh) does not serve: cosign v3 then
// writes its bundles as referrers (GET /v2/<name>/referrers/<digest>) instead
// of the referrers tag fallback, and the fixtures and the e2e exercise both
// (test/fixtures/cosign/regenerate.sh, e2e/registry.sh). Manifests are kept in
// memory, blobs under -disk. Built by hack/gotool.sh.
//
// Once listening it prints "ociregistry listening on http://127.0.0.1:<port>"
// on stdout; requests are logged on stderr.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	disk := flag.String("disk", "", "directory for the blobs (default: memory)")
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
	log.Fatal(http.Serve(ln, registry.New(opts...)))
}
