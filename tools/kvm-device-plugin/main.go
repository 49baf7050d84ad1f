// Command kvm-device-plugin advertises /dev/kvm and /dev/net/tun to the kubelet as the
// extended resources devices.kubevirt.io/kvm and devices.kubevirt.io/tun, the resources the
// KVM platform's QEMU pods request (components/kvm/workload.ts). Each resource is a fixed
// number of interchangeable device IDs: the devices are shared, a container that is allocated
// one gets the device node (read-write) without being privileged. The plugin serves the
// kubelet's device plugin API (v1beta1) on a socket per resource in the kubelet's
// device-plugin folder and registers again whenever that socket disappears (the kubelet
// removes every socket there when it restarts).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// About is what -version prints; tools/build.sh checks it.
const About = "g8s kvm-device-plugin: devices.kubevirt.io/kvm and devices.kubevirt.io/tun"

// Device is one shared device node advertised as an extended resource.
type Device struct {
	// Resource is the extended resource name, e.g. devices.kubevirt.io/kvm.
	Resource string
	// Path is the device node on the node, e.g. /dev/kvm; containers get it at the same path.
	Path string
	// Socket is the plugin's socket file name in the device-plugin folder.
	Socket string
}

// Devices are the two resources of the KVM platform.
var Devices = []Device{
	{Resource: "devices.kubevirt.io/kvm", Path: "/dev/kvm", Socket: "g8s-kvm.sock"},
	{Resource: "devices.kubevirt.io/tun", Path: "/dev/net/tun", Socket: "g8s-tun.sock"},
}

// Config is what one plugin process serves.
type Config struct {
	// PluginDir is the kubelet's device-plugin folder (kubelet.sock lives there).
	PluginDir string
	// DevRoot is where the node's /dev is seen from this process ("/" on the node itself,
	// the mount of the node's /dev's parent in a pod). Only health checks look there.
	DevRoot string
	// Count is the number of device IDs advertised per resource.
	Count int
	// Poll is how often the socket and the devices' health are checked.
	Poll time.Duration
}

func (c Config) validate() error {
	if c.PluginDir == "" {
		return errors.New("-plugin-dir must not be empty")
	}
	if c.Count < 1 || c.Count > 10000 {
		return fmt.Errorf("-count must be between 1 and 10000 (got %d)", c.Count)
	}
	if c.Poll <= 0 {
		return fmt.Errorf("-poll must be positive (got %s)", c.Poll)
	}
	return nil
}

// plugin serves one Device.
type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	cfg Config
	dev Device
	// stop ends the ListAndWatch streams of this server when it is replaced.
	stop chan struct{}
}

func (p *plugin) socketPath() string { return filepath.Join(p.cfg.PluginDir, p.dev.Socket) }

// healthy reports whether the device node exists where this process sees the node's /dev.
func (p *plugin) healthy() bool {
	fi, err := os.Stat(filepath.Join(p.cfg.DevRoot, p.dev.Path))
	return err == nil && fi.Mode()&os.ModeDevice != 0
}

func (p *plugin) devices() []*pluginapi.Device {
	health := pluginapi.Unhealthy
	if p.healthy() {
		health = pluginapi.Healthy
	}
	out := make([]*pluginapi.Device, p.cfg.Count)
	for i := range out {
		out[i] = &pluginapi.Device{ID: fmt.Sprintf("%s-%d", filepath.Base(p.dev.Path), i), Health: health}
	}
	return out
}

func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

// ListAndWatch sends the device list, then again whenever the device's health changes.
func (p *plugin) ListAndWatch(_ *pluginapi.Empty, s pluginapi.DevicePlugin_ListAndWatchServer) error {
	last := p.healthy()
	if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: p.devices()}); err != nil {
		return err
	}
	t := time.NewTicker(p.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return nil
		case <-s.Context().Done():
			return nil
		case <-t.C:
			if now := p.healthy(); now != last {
				last = now
				log.Printf("%s: %s is now healthy=%t", p.dev.Resource, p.dev.Path, now)
				if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: p.devices()}); err != nil {
					return err
				}
			}
		}
	}
}

// Allocate gives each container the device node, read-write, at the same path.
func (p *plugin) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for range req.ContainerRequests {
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerAllocateResponse{
			Devices: []*pluginapi.DeviceSpec{{ContainerPath: p.dev.Path, HostPath: p.dev.Path, Permissions: "rw"}},
		})
	}
	return resp, nil
}

func (p *plugin) GetPreferredAllocation(context.Context, *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	return &pluginapi.PreferredAllocationResponse{}, nil
}

func (p *plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

// serve starts the plugin's gRPC server on its socket and registers it with the kubelet.
func (p *plugin) serve(ctx context.Context) (*grpc.Server, error) {
	sock := p.socketPath()
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing the old socket %s: %w", sock, err)
	}
	lis, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", sock, err)
	}
	srv := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(srv, p)
	go func() { _ = srv.Serve(lis) }()
	if err := p.register(ctx); err != nil {
		srv.Stop()
		return nil, err
	}
	return srv, nil
}

// register tells the kubelet (kubelet.sock in the plugin folder) about this plugin.
func (p *plugin) register(ctx context.Context) error {
	kubelet := filepath.Join(p.cfg.PluginDir, filepath.Base(pluginapi.KubeletSocket))
	conn, err := grpc.NewClient("unix://"+kubelet, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connecting to the kubelet at %s: %w", kubelet, err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(cctx, &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     p.dev.Socket,
		ResourceName: p.dev.Resource,
		Options:      &pluginapi.DevicePluginOptions{},
	})
	if err != nil {
		return fmt.Errorf("registering %s with the kubelet at %s: %w", p.dev.Resource, kubelet, err)
	}
	return nil
}

// runDevice serves one device until ctx ends: it (re)starts and registers whenever its socket
// is missing, i.e. at start and after every kubelet restart, retrying each Poll.
func runDevice(ctx context.Context, cfg Config, dev Device) {
	var srv *grpc.Server
	var p *plugin
	stopServer := func() {
		if srv != nil {
			close(p.stop)
			srv.Stop()
			srv = nil
		}
	}
	defer stopServer()
	t := time.NewTicker(cfg.Poll)
	defer t.Stop()
	for {
		if _, err := os.Stat(filepath.Join(cfg.PluginDir, dev.Socket)); srv == nil || err != nil {
			if srv != nil {
				log.Printf("%s: socket gone (kubelet restarted?): registering again", dev.Resource)
			}
			stopServer()
			p = &plugin{cfg: cfg, dev: dev, stop: make(chan struct{})}
			s, err := p.serve(ctx)
			if err != nil {
				log.Printf("%s: %v (retrying)", dev.Resource, err)
			} else {
				srv = s
				log.Printf("%s: registered, %d devices of %s, healthy=%t", dev.Resource, cfg.Count, dev.Path, p.healthy())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Run serves every device until ctx ends.
func Run(ctx context.Context, cfg Config, devices []Device) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runDevice(ctx, cfg, d)
		}()
	}
	wg.Wait()
	return nil
}

func main() {
	cfg := Config{}
	flag.StringVar(&cfg.PluginDir, "plugin-dir", pluginapi.DevicePluginPath, "the kubelet's device-plugin folder")
	flag.StringVar(&cfg.DevRoot, "dev-root", "/", "where the node's /dev is visible from here (health checks)")
	flag.IntVar(&cfg.Count, "count", 110, "device IDs advertised per resource (the devices are shared)")
	flag.DurationVar(&cfg.Poll, "poll", 2*time.Second, "how often the sockets and the devices are checked")
	version := flag.Bool("version", false, "print what this is and exit")
	flag.Parse()
	if *version {
		fmt.Println(About)
		return
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := Run(ctx, cfg, Devices); err != nil {
		fmt.Fprintln(os.Stderr, "kvm-device-plugin:", err)
		os.Exit(2)
	}
}
