// Command pulumi-resource-kubernetes is the Pulumi Kubernetes provider plugin,
// served from the pinned github.com/pulumi/pulumi-kubernetes/provider/v4 module.
//
// The provider's package schema and Terraform mapping ship in that module under
// cmd/pulumi-resource-kubernetes/; tools/build.sh copies them into generated/
// (ignored by git), with the schema's "version" set to the plugin version, before
// it compiles this file. The same version is stamped into the provider's version
// package with -ldflags -X (see tools/build.sh), so schema, plugin and user agent agree.
package main

import (
	_ "embed"
	"fmt"
	"os"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed generated/schema.json
var schema []byte

//go:embed generated/terraform-mapping.json
var terraformMapping []byte

func main() {
	// The engine starts the plugin with the engine's address as the only
	// argument; --version is ours, so tools/build.sh can check the stamp.
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println(version.Version)
		return
	}
	provider.Serve("kubernetes", version.Version, schema, terraformMapping)
}
