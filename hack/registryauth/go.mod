// The registry's credentials for the image.verify e2e and the demo: bcrypt
// htpasswd lines and a token server (e2e/registry.sh). Built by hack/gotool.sh.
module membrane.local/hack/registryauth

go 1.26.0

require golang.org/x/crypto v0.54.0
