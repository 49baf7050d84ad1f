// Command flannel is g8s's CNI plugin for a flannel network: it reads the subnet that
// flanneld leased for this node (/run/flannel/subnet.env), turns it into a bridge +
// host-local configuration and hands the call to the bridge plugin. See README.md.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

// about is what the plugin prints when it is run without CNI_COMMAND (tools/build.sh
// checks it after a build).
const about = "g8s flannel CNI plugin: bridge + host-local for this node's flannel subnet"

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck}, version.All, about)
}
