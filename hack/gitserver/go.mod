// A loopback Git server over smart HTTP for the GitOps e2e
// (e2e/test_gitops.sh). Built by hack/gotool.sh; the standard library only.
module membrane.local/hack/gitserver

go 1.26.0
