// Stamped watches for the side-by-side latency benchmark (hack/bench-peers.sh).
// Built by hack/gotool.sh; the standard library only.
module membrane.local/hack/watchstamp

go 1.26.0
