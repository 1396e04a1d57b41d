// A fault-injecting proxy for the resilience e2e (e2e/test_resilience.sh).
// Built by hack/gotool.sh; the standard library only.
module membrane.local/hack/faultproxy

go 1.26.0
