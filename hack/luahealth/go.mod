// Runs the Argo CD health scripts' test runner with gopher-lua (the Lua
// Argo CD embeds), for test/integration/test_argocd_health.sh. Built by
// hack/gotool.sh.
module membrane.local/hack/luahealth

go 1.26.0

require github.com/yuin/gopher-lua v1.1.2
