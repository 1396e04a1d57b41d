// kube-scheduler, built from the pinned upstream command package, so that the
// pods of Deployments are bound to kwok's fake nodes as in a real cluster.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand()))
}
