// Command etcd is the etcd server of the local host cluster, built from the
// pinned go.etcd.io/etcd/server/v3 module (see go.mod and ../README.md).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
