// go-containerregistry's registry with the referrers API, for the cosign
// fixtures and the image.verify e2e (hack/gotool.sh ociregistry).
module membrane.local/hack/ociregistry

go 1.26.0

require github.com/google/go-containerregistry v0.22.1
