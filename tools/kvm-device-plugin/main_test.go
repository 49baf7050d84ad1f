package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// fakeKubelet is the kubelet's registration service on kubelet.sock in a plugin folder.
type fakeKubelet struct {
	pluginapi.UnimplementedRegistrationServer
	srv  *grpc.Server
	regs chan *pluginapi.RegisterRequest
}

func (k *fakeKubelet) Register(_ context.Context, r *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	k.regs <- r
	return &pluginapi.Empty{}, nil
}

func startKubelet(t *testing.T, dir string) *fakeKubelet {
	t.Helper()
	lis, err := net.Listen("unix", filepath.Join(dir, "kubelet.sock"))
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKubelet{srv: grpc.NewServer(), regs: make(chan *pluginapi.RegisterRequest, 16)}
	pluginapi.RegisterRegistrationServer(k.srv, k)
	go func() { _ = k.srv.Serve(lis) }()
	return k
}

// registrations waits for one registration per resource and returns them by resource.
func (k *fakeKubelet) registrations(t *testing.T, n int) map[string]*pluginapi.RegisterRequest {
	t.Helper()
	out := map[string]*pluginapi.RegisterRequest{}
	deadline := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case r := <-k.regs:
			out[r.ResourceName] = r
		case <-deadline:
			t.Fatalf("got %d registrations, want %d", len(out), n)
		}
	}
	return out
}

// restart is what a kubelet restart does to the folder: it stops serving and removes every socket.
func (k *fakeKubelet) restart(t *testing.T, dir string) *fakeKubelet {
	t.Helper()
	k.srv.Stop()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".sock" {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return startKubelet(t, dir)
}

func dial(t *testing.T, dir, endpoint string) pluginapi.DevicePluginClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+filepath.Join(dir, endpoint), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pluginapi.NewDevicePluginClient(conn)
}

// devRoot makes a folder with character devices at dev/kvm and dev/net/tun (mknod needs root;
// without it the test makes none and expects them unhealthy).
func devRoot(t *testing.T, withDevices bool) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "dev", "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	if withDevices {
		for _, d := range Devices {
			// /dev/null's numbers: a harmless character device.
			if err := unix.Mknod(filepath.Join(root, d.Path), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err != nil {
				t.Skipf("mknod needs root: %v", err)
			}
		}
	}
	return root
}

func run(t *testing.T, cfg Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := Run(ctx, cfg, Devices); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func firstList(t *testing.T, c pluginapi.DevicePluginClient) []*pluginapi.Device {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.ListAndWatch(ctx, &pluginapi.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return r.Devices
}

func TestRegistersListsAllocatesAndReRegisters(t *testing.T) {
	dir := t.TempDir()
	kubelet := startKubelet(t, dir)
	defer func() { kubelet.srv.Stop() }()
	run(t, Config{PluginDir: dir, DevRoot: devRoot(t, true), Count: 110, Poll: 100 * time.Millisecond})

	regs := kubelet.registrations(t, 2)
	for _, d := range Devices {
		r := regs[d.Resource]
		if r == nil {
			t.Fatalf("no registration of %s: %v", d.Resource, regs)
		}
		if r.Version != "v1beta1" || r.Endpoint != d.Socket {
			t.Errorf("%s registered as version %q endpoint %q", d.Resource, r.Version, r.Endpoint)
		}
		c := dial(t, dir, r.Endpoint)
		devs := firstList(t, c)
		if len(devs) != 110 {
			t.Fatalf("%s: %d devices, want 110", d.Resource, len(devs))
		}
		for _, dev := range devs {
			if dev.Health != pluginapi.Healthy {
				t.Fatalf("%s: device %s is %s", d.Resource, dev.ID, dev.Health)
			}
		}
		resp, err := c.Allocate(context.Background(), &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
			{DevicesIds: []string{devs[0].ID}}, {DevicesIds: []string{devs[1].ID}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.ContainerResponses) != 2 {
			t.Fatalf("%s: %d container responses for 2 containers", d.Resource, len(resp.ContainerResponses))
		}
		for _, cr := range resp.ContainerResponses {
			if len(cr.Devices) != 1 || cr.Devices[0].HostPath != d.Path || cr.Devices[0].ContainerPath != d.Path || cr.Devices[0].Permissions != "rw" {
				t.Errorf("%s: allocated %v, want %s rw", d.Resource, cr.Devices, d.Path)
			}
			if len(cr.Mounts) != 0 || len(cr.Envs) != 0 {
				t.Errorf("%s: unexpected mounts or env %v %v", d.Resource, cr.Mounts, cr.Envs)
			}
		}
	}

	kubelet = kubelet.restart(t, dir)
	again := kubelet.registrations(t, 2)
	for _, d := range Devices {
		if again[d.Resource] == nil {
			t.Fatalf("%s did not register again after the kubelet restarted", d.Resource)
		}
		if got := firstList(t, dial(t, dir, again[d.Resource].Endpoint)); len(got) != 110 {
			t.Fatalf("%s after re-registration: %d devices", d.Resource, len(got))
		}
	}
}

func TestMissingDevicesAreUnhealthy(t *testing.T) {
	dir := t.TempDir()
	kubelet := startKubelet(t, dir)
	defer kubelet.srv.Stop()
	run(t, Config{PluginDir: dir, DevRoot: devRoot(t, false), Count: 3, Poll: 100 * time.Millisecond})
	regs := kubelet.registrations(t, 2)
	for _, d := range Devices {
		devs := firstList(t, dial(t, dir, regs[d.Resource].Endpoint))
		if len(devs) != 3 || devs[0].Health != pluginapi.Unhealthy {
			t.Fatalf("%s without %s: %v, want 3 unhealthy", d.Resource, d.Path, devs)
		}
	}
}

func TestConfigRefused(t *testing.T) {
	for _, cfg := range []Config{{PluginDir: "", Count: 1, Poll: time.Second}, {PluginDir: "/x", Count: 0, Poll: time.Second}, {PluginDir: "/x", Count: 1}} {
		if err := Run(context.Background(), cfg, Devices); err == nil {
			t.Errorf("Run(%+v) accepted", cfg)
		}
	}
}
