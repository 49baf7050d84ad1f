package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
}

const subnetEnvV4 = `FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.3.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
`

func TestReadSubnetEnvTakesTheNodeSubnetFlanneldLeased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subnet.env")
	writeFile(t, path, subnetEnvV4)
	env, err := readSubnetEnv(path)
	if err != nil {
		t.Fatal(err)
	}
	if env.Network.String() != "10.244.0.0/16" || env.Subnet.String() != "10.244.3.0/24" ||
		env.MTU != 1450 || !env.IPMasq || env.IPv6Subnet != nil {
		t.Fatalf("unexpected subnet env: %+v", env)
	}
}

func TestReadSubnetEnvNamesTheFileAndKeyOfABadValue(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct{ text, want string }{
		"missing MTU":     {strings.Replace(subnetEnvV4, "FLANNEL_MTU=1450\n", "", 1), "FLANNEL_MTU is missing"},
		"MTU too small":   {strings.Replace(subnetEnvV4, "1450", "100", 1), `FLANNEL_MTU="100" is not an MTU`},
		"not a CIDR":      {strings.Replace(subnetEnvV4, "10.244.3.1/24", "10.244.3.1", 1), `FLANNEL_SUBNET="10.244.3.1" is not an IPv4 CIDR`},
		"outside network": {strings.Replace(subnetEnvV4, "10.244.3.1/24", "10.9.3.1/24", 1), "FLANNEL_SUBNET 10.9.3.0/24 is not inside FLANNEL_NETWORK 10.244.0.0/16"},
		"half a pair":     {strings.Replace(subnetEnvV4, "FLANNEL_NETWORK=10.244.0.0/16\n", "", 1), "FLANNEL_NETWORK and FLANNEL_SUBNET must both be set"},
		"no subnet":       {"FLANNEL_MTU=1450\n", "flanneld has not leased a subnet"},
		"bad masq":        {strings.Replace(subnetEnvV4, "=true", "=yes", 1), `FLANNEL_IPMASQ="yes" is not true or false`},
		"not KEY=VALUE":   {subnetEnvV4 + "garbage\n", `subnet.env:5: "garbage" is not KEY=VALUE`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, "subnet.env")
			writeFile(t, path, c.text)
			_, err := readSubnetEnv(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("want an error naming %s and %q, got %v", path, c.want, err)
			}
		})
	}
}

func TestDelegateIsABridgeWithHostLocalAddressesOfTheNodeSubnet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subnet.env")
	writeFile(t, path, subnetEnvV4+"FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\n")
	env, err := readSubnetEnv(path)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := loadNetConf([]byte(`{"cniVersion":"1.0.0","name":"cbr0","type":"flannel","delegate":{"bridge":"flannel0"}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := delegateConf(conf, env)
	want := map[string]any{
		"cniVersion": "1.0.0", "name": "cbr0", "type": "bridge",
		"bridge": "flannel0", "isGateway": true, "isDefaultGateway": true, "hairpinMode": true,
		// flanneld masquerades (FLANNEL_IPMASQ=true), so the bridge must not do it again.
		"ipMasq": false, "mtu": 1450,
		"ipam": map[string]any{
			"type": "host-local",
			"ranges": []any{
				[]any{map[string]any{"subnet": "10.244.3.0/24"}},
				[]any{map[string]any{"subnet": "fd00:10:244:3::/64"}},
			},
			"routes": []any{map[string]any{"dst": "10.244.0.0/16"}, map[string]any{"dst": "fd00:10:244::/56"}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("delegate\n got %s\nwant %s", g, w)
	}
	env.IPMasq = false
	if delegateConf(conf, env)["ipMasq"] != true {
		t.Fatal("without FLANNEL_IPMASQ the bridge must masquerade")
	}
}

func TestNetConfRejectsDelegateFieldsThePluginOwns(t *testing.T) {
	_, err := loadNetConf([]byte(`{"cniVersion":"1.0.0","name":"cbr0","type":"flannel","delegate":{"ipam":{}}}`))
	if err == nil || !strings.Contains(err.Error(), `"delegate.ipam" is set by the plugin itself`) {
		t.Fatalf("want delegate.ipam rejected, got %v", err)
	}
	_, err = loadNetConf([]byte(`{"cniVersion":"1.0.0","type":"flannel"}`))
	if err == nil || !strings.Contains(err.Error(), `"name" is missing`) {
		t.Fatalf("want a missing name rejected, got %v", err)
	}
}

// fakeBridge installs a "bridge" plugin in a CNI_PATH of its own that records each
// call's command and configuration in dir and answers ADD with a result.
func fakeBridge(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bridge"), `#!/bin/sh
cat > "$(dirname "$0")/$CNI_COMMAND.json"
echo "$CNI_COMMAND $CNI_CONTAINERID" >> "$(dirname "$0")/calls"
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.244.3.7/24","gateway":"10.244.3.1","interface":0}]}'
fi
`)
	t.Setenv("CNI_PATH", dir)
	return dir
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]any{}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// captureStdout runs f with os.Stdout going to a file and returns what it wrote.
func captureStdout(t *testing.T, f func() error) string {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = out
	ferr := f()
	os.Stdout = saved
	if ferr != nil {
		t.Fatal(ferr)
	}
	data, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestAddCheckDelHandTheSavedConfigurationToTheBridge(t *testing.T) {
	bridge := fakeBridge(t)
	tmp := t.TempDir()
	subnet := filepath.Join(tmp, "subnet.env")
	writeFile(t, subnet, subnetEnvV4)
	data := filepath.Join(tmp, "data")
	conf := `{"cniVersion":"1.0.0","name":"cbr0","type":"flannel","subnetFile":"` + subnet + `","dataDir":"` + data + `"}`
	t.Setenv("CNI_CONTAINERID", "c1")
	args := &skel.CmdArgs{ContainerID: "c1", Netns: "/var/run/netns/c1", IfName: "eth0", StdinData: []byte(conf)}

	out := captureStdout(t, func() error { return cmdAdd(args) })
	var result struct {
		IPs []struct{ Address string } `json:"ips"`
	}
	if err := json.Unmarshal([]byte(out), &result); err != nil || len(result.IPs) != 1 || result.IPs[0].Address != "10.244.3.7/24" {
		t.Fatalf("ADD printed %q (%v), want the bridge's result", out, err)
	}
	added := readJSON(t, filepath.Join(bridge, "ADD.json"))
	if added["type"] != "bridge" || added["hairpinMode"] != true || added["ipMasq"] != false {
		t.Fatalf("bridge got %v", added)
	}
	if !reflect.DeepEqual(readJSON(t, filepath.Join(data, "c1")), added) {
		t.Fatal("ADD must save exactly the configuration it gave the bridge")
	}

	// The subnet file is gone (flanneld restarted): CHECK and DEL use what ADD saved.
	if err := os.Remove(subnet); err != nil {
		t.Fatal(err)
	}
	prev := `{"cniVersion":"1.0.0","name":"cbr0","type":"flannel","dataDir":"` + data + `","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.244.3.7/24"}]}}`
	if err := cmdCheck(&skel.CmdArgs{ContainerID: "c1", StdinData: []byte(prev)}); err != nil {
		t.Fatal(err)
	}
	checked := readJSON(t, filepath.Join(bridge, "CHECK.json"))
	if checked["prevResult"] == nil || checked["ipam"] == nil {
		t.Fatalf("CHECK must hand the saved configuration and the prevResult to the bridge, got %v", checked)
	}

	if err := cmdDel(args); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(readJSON(t, filepath.Join(bridge, "DEL.json")), added) {
		t.Fatal("DEL must hand the bridge the configuration ADD used")
	}
	if _, err := os.Stat(filepath.Join(data, "c1")); !os.IsNotExist(err) {
		t.Fatalf("DEL must remove the saved configuration, stat: %v", err)
	}
	// A second DEL succeeds without calling the bridge again.
	if err := cmdDel(args); err != nil {
		t.Fatal(err)
	}
	calls, _ := os.ReadFile(filepath.Join(bridge, "calls"))
	if string(calls) != "ADD c1\nCHECK c1\nDEL c1\n" {
		t.Fatalf("bridge calls: %q", calls)
	}
}

func TestAddFailsWithoutASubnetFileAndCallsNoBridge(t *testing.T) {
	bridge := fakeBridge(t)
	tmp := t.TempDir()
	conf := `{"cniVersion":"1.0.0","name":"cbr0","type":"flannel","subnetFile":"` + tmp + `/none.env","dataDir":"` + tmp + `"}`
	err := cmdAdd(&skel.CmdArgs{ContainerID: "c2", StdinData: []byte(conf)})
	if err == nil || !strings.Contains(err.Error(), "none.env") || !strings.Contains(err.Error(), "is flanneld running") {
		t.Fatalf("want an error naming the subnet file, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(bridge, "calls")); !os.IsNotExist(err) {
		t.Fatal("the bridge must not be called")
	}
}

func TestContainerIDCannotEscapeTheDataDir(t *testing.T) {
	conf := &NetConf{DataDir: "/var/lib/cni/flannel"}
	for _, id := range []string{"", "..", "../x", "a/b"} {
		if _, err := savedConfPath(conf, id); err == nil {
			t.Fatalf("container ID %q accepted", id)
		}
	}
}
