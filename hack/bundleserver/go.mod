// A loopback HTTPS file server for the PolicyBundle e2e and the demo
// (e2e/test_policy.sh, hack/demo.sh). Built by hack/gotool.sh; the standard
// library only.
module membrane.local/hack/bundleserver

go 1.26.0
