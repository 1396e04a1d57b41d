// luahealth runs a Lua script with gopher-lua, the Lua 5.1 that Argo CD
// embeds, the way test/integration/test_argocd_health.sh runs it with lua5.1:
//
//	luahealth RUNNER ARG...
//
// runs RUNNER (test/integration/argocd_health_run.lua) with the global `arg`
// set to {[0] = RUNNER, ARG...}, so the same runner loads the Argo CD health
// script and its fixtures under both interpreters. Only the libraries Argo CD
// opens for health scripts are loaded (base, table, string, math), with print
// writing to stdout. Built by hack/gotool.sh luahealth.
package main

import (
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: luahealth RUNNER.lua [ARG...]")
		os.Exit(2)
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage}, // loadfile needs the package library's loaders
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	args := L.NewTable()
	for i, a := range os.Args[1:] {
		L.RawSetInt(args, i, lua.LString(a))
	}
	L.SetGlobal("arg", args)
	if err := L.DoFile(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "luahealth: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
