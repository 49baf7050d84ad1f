package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

const (
	defaultSubnetFile = "/run/flannel/subnet.env"
	defaultDataDir    = "/var/lib/cni/flannel"
	defaultBridge     = "cni0"
	delegateType      = "bridge"
)

// NetConf is the plugin's network configuration (the CNI config file's plugin entry).
type NetConf struct {
	types.NetConf
	// SubnetFile is the file flanneld writes for this node (default /run/flannel/subnet.env).
	SubnetFile string `json:"subnetFile,omitempty"`
	// DataDir keeps the delegate configuration of each container, so DEL and CHECK use
	// what ADD used even after the subnet changed (default /var/lib/cni/flannel).
	DataDir string `json:"dataDir,omitempty"`
	// Delegate overrides fields of the bridge configuration (e.g. "bridge",
	// "hairpinMode", "isDefaultGateway"); "type", "name", "cniVersion" and "ipam" are the
	// plugin's own.
	Delegate map[string]any `json:"delegate,omitempty"`
}

// SubnetEnv is what flanneld leased for this node, read from its subnet file.
type SubnetEnv struct {
	Network     *net.IPNet // FLANNEL_NETWORK: the whole pod network
	Subnet      *net.IPNet // FLANNEL_SUBNET: this node's part of it (network address)
	IPv6Network *net.IPNet // FLANNEL_IPV6_NETWORK (optional)
	IPv6Subnet  *net.IPNet // FLANNEL_IPV6_SUBNET (optional)
	MTU         int        // FLANNEL_MTU
	IPMasq      bool       // FLANNEL_IPMASQ: flanneld masquerades traffic leaving the pod network
}

// loadNetConf parses and checks the configuration given on stdin.
func loadNetConf(stdin []byte) (*NetConf, error) {
	conf := &NetConf{}
	if err := json.Unmarshal(stdin, conf); err != nil {
		return nil, fmt.Errorf("network configuration: not valid JSON: %w", err)
	}
	if conf.Name == "" {
		return nil, errors.New(`network configuration: "name" is missing: name the network (e.g. "cbr0")`)
	}
	if conf.SubnetFile == "" {
		conf.SubnetFile = defaultSubnetFile
	}
	if conf.DataDir == "" {
		conf.DataDir = defaultDataDir
	}
	for _, own := range []string{"type", "name", "cniVersion", "ipam"} {
		if _, set := conf.Delegate[own]; set {
			return nil, fmt.Errorf(`network configuration %q: "delegate.%s" is set by the plugin itself: remove it`, conf.Name, own)
		}
	}
	return conf, nil
}

// readSubnetEnv reads flanneld's subnet file (KEY=VALUE lines).
func readSubnetEnv(path string) (*SubnetEnv, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (is flanneld running on this node?)", path, err)
	}
	defer f.Close()
	values := map[string]string{}
	scanner := bufio.NewScanner(f)
	for line := 1; scanner.Scan(); line++ {
		text := strings.TrimSpace(scanner.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: %q is not KEY=VALUE", path, line, text)
		}
		values[key] = value
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}

	env := &SubnetEnv{}
	cidr := func(key string, ipv6 bool) (*net.IPNet, error) {
		value, ok := values[key]
		if !ok {
			return nil, nil
		}
		_, n, err := net.ParseCIDR(value)
		if err != nil || (n.IP.To4() == nil) != ipv6 {
			family := "an IPv4"
			if ipv6 {
				family = "an IPv6"
			}
			return nil, fmt.Errorf("%s: %s=%q is not %s CIDR (e.g. %s)", path, key, value, family, map[bool]string{false: "10.244.1.1/24", true: "fd00:10:244:1::1/64"}[ipv6])
		}
		return n, nil
	}
	if env.Network, err = cidr("FLANNEL_NETWORK", false); err != nil {
		return nil, err
	}
	if env.Subnet, err = cidr("FLANNEL_SUBNET", false); err != nil {
		return nil, err
	}
	if env.IPv6Network, err = cidr("FLANNEL_IPV6_NETWORK", true); err != nil {
		return nil, err
	}
	if env.IPv6Subnet, err = cidr("FLANNEL_IPV6_SUBNET", true); err != nil {
		return nil, err
	}
	if (env.Network == nil) != (env.Subnet == nil) {
		return nil, fmt.Errorf("%s: FLANNEL_NETWORK and FLANNEL_SUBNET must both be set or both be absent", path)
	}
	if (env.IPv6Network == nil) != (env.IPv6Subnet == nil) {
		return nil, fmt.Errorf("%s: FLANNEL_IPV6_NETWORK and FLANNEL_IPV6_SUBNET must both be set or both be absent", path)
	}
	if env.Subnet == nil && env.IPv6Subnet == nil {
		return nil, fmt.Errorf("%s: neither FLANNEL_SUBNET nor FLANNEL_IPV6_SUBNET is set: flanneld has not leased a subnet", path)
	}
	if env.Subnet != nil && !env.Network.Contains(env.Subnet.IP) {
		return nil, fmt.Errorf("%s: FLANNEL_SUBNET %s is not inside FLANNEL_NETWORK %s", path, env.Subnet, env.Network)
	}
	if env.IPv6Subnet != nil && !env.IPv6Network.Contains(env.IPv6Subnet.IP) {
		return nil, fmt.Errorf("%s: FLANNEL_IPV6_SUBNET %s is not inside FLANNEL_IPV6_NETWORK %s", path, env.IPv6Subnet, env.IPv6Network)
	}
	mtu, ok := values["FLANNEL_MTU"]
	if !ok {
		return nil, fmt.Errorf("%s: FLANNEL_MTU is missing", path)
	}
	if env.MTU, err = strconv.Atoi(mtu); err != nil || env.MTU < 576 {
		return nil, fmt.Errorf("%s: FLANNEL_MTU=%q is not an MTU (a number >= 576)", path, mtu)
	}
	if masq, ok := values["FLANNEL_IPMASQ"]; ok {
		if env.IPMasq, err = strconv.ParseBool(masq); err != nil {
			return nil, fmt.Errorf("%s: FLANNEL_IPMASQ=%q is not true or false", path, masq)
		}
	}
	return env, nil
}

// delegateConf is the bridge plugin's configuration for this node's subnet: pods on
// bridge cni0 (gateway, default route, hairpin), addresses from host-local out of the
// node's subnet, a route to the whole pod network; the bridge masquerades only when
// flanneld does not.
func delegateConf(conf *NetConf, env *SubnetEnv) map[string]any {
	var ranges, routes []any
	if env.Subnet != nil {
		ranges = append(ranges, []any{map[string]any{"subnet": env.Subnet.String()}})
		routes = append(routes, map[string]any{"dst": env.Network.String()})
	}
	if env.IPv6Subnet != nil {
		ranges = append(ranges, []any{map[string]any{"subnet": env.IPv6Subnet.String()}})
		routes = append(routes, map[string]any{"dst": env.IPv6Network.String()})
	}
	d := map[string]any{
		"bridge":           defaultBridge,
		"isGateway":        true,
		"isDefaultGateway": true,
		"hairpinMode":      true,
		"ipMasq":           !env.IPMasq,
		"mtu":              env.MTU,
	}
	for k, v := range conf.Delegate {
		d[k] = v
	}
	d["cniVersion"] = conf.CNIVersion
	d["name"] = conf.Name
	d["type"] = delegateType
	d["ipam"] = map[string]any{"type": "host-local", "ranges": ranges, "routes": routes}
	return d
}

// savedConfPath is where ADD keeps a container's delegate configuration.
func savedConfPath(conf *NetConf, containerID string) (string, error) {
	if containerID == "" || strings.ContainsAny(containerID, `/\`) || containerID == "." || containerID == ".." {
		return "", fmt.Errorf("CNI_CONTAINERID %q is not a container ID", containerID)
	}
	return filepath.Join(conf.DataDir, containerID), nil
}

func cmdAdd(args *skel.CmdArgs) error {
	conf, err := loadNetConf(args.StdinData)
	if err != nil {
		return err
	}
	env, err := readSubnetEnv(conf.SubnetFile)
	if err != nil {
		return err
	}
	delegate, err := json.Marshal(delegateConf(conf, env))
	if err != nil {
		return err
	}
	path, err := savedConfPath(conf, args.ContainerID)
	if err != nil {
		return err
	}
	// Saved before the delegate runs: a failed ADD is followed by a DEL, which must
	// release whatever the delegate did allocate.
	if err := os.MkdirAll(conf.DataDir, 0o700); err != nil {
		return fmt.Errorf("dataDir %s: %w", conf.DataDir, err)
	}
	if err := os.WriteFile(path, delegate, 0o600); err != nil {
		return fmt.Errorf("dataDir %s: %w", conf.DataDir, err)
	}
	result, err := invoke.DelegateAdd(context.TODO(), delegateType, delegate, nil)
	if err != nil {
		return fmt.Errorf("delegate %s ADD: %w", delegateType, err)
	}
	return types.PrintResult(result, conf.CNIVersion)
}

// confAndSavedPath is the configuration on stdin and where ADD saved the container's
// delegate configuration.
func confAndSavedPath(args *skel.CmdArgs) (*NetConf, string, error) {
	conf, err := loadNetConf(args.StdinData)
	if err != nil {
		return nil, "", err
	}
	path, err := savedConfPath(conf, args.ContainerID)
	return conf, path, err
}

func cmdDel(args *skel.CmdArgs) error {
	conf, path, err := confAndSavedPath(args)
	if err != nil {
		return err
	}
	delegate, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // never added, or already deleted: DEL must succeed again
	}
	if err != nil {
		return fmt.Errorf("dataDir %s: %w", conf.DataDir, err)
	}
	if err := invoke.DelegateDel(context.TODO(), delegateType, delegate, nil); err != nil {
		return fmt.Errorf("delegate %s DEL: %w", delegateType, err)
	}
	return os.Remove(path)
}

func cmdCheck(args *skel.CmdArgs) error {
	conf, path, err := confAndSavedPath(args)
	if err != nil {
		return err
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("CHECK of container %s: no configuration from its ADD in dataDir %s: %w", args.ContainerID, conf.DataDir, err)
	}
	delegate := map[string]any{}
	if err := json.Unmarshal(saved, &delegate); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// CHECK hands the runtime's prevResult to the delegate.
	if conf.RawPrevResult != nil {
		delegate["prevResult"] = conf.RawPrevResult
	}
	delegate["cniVersion"] = conf.CNIVersion
	data, err := json.Marshal(delegate)
	if err != nil {
		return err
	}
	if err := invoke.DelegateCheck(context.TODO(), delegateType, data, nil); err != nil {
		return fmt.Errorf("delegate %s CHECK: %w", delegateType, err)
	}
	return nil
}
