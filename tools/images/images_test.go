package main

import (
	"archive/tar"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// fixture writes a binary, a root file system tree and a spec using both; returns the spec file.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "tool")
	must(os.WriteFile(bin, []byte("#!/bin/sh\necho tool\n"), 0o755))
	rootfs := filepath.Join(dir, "rootfs")
	must(os.MkdirAll(filepath.Join(rootfs, "usr/sbin"), 0o755))
	must(os.WriteFile(filepath.Join(rootfs, "usr/sbin/xtables-nft-multi"), []byte("x"), 0o755))
	must(os.Symlink("xtables-nft-multi", filepath.Join(rootfs, "usr/sbin/iptables")))
	spec := `{
  "created": "2025-01-02T03:04:05Z",
  "layers": {
    "base": { "dir": "` + rootfs + `" },
    "tool": { "files": [
      { "path": "/usr/local/bin/tool", "src": "` + bin + `" },
      { "path": "/etc/passwd", "content": "root:x:0:0:root:/root:/sbin/nologin\n" },
      { "path": "/tmp", "mode": "1777" }
    ] }
  },
  "images": [
    { "ref": "registry.k8s.io/tool:v1", "file": "tool.tar", "layers": ["base", "tool"],
      "entrypoint": ["/usr/local/bin/tool"], "env": ["PATH=/usr/local/bin:/usr/sbin"] },
    { "ref": "registry.k8s.io/other:v2", "file": "other.tar", "layers": ["base"] }
  ]
}`
	file := filepath.Join(dir, "spec.json")
	must(os.WriteFile(file, []byte(spec), 0o644))
	return file
}

func buildFixture(t *testing.T, specFile string) (string, Manifest) {
	t.Helper()
	spec, err := readSpec(specFile)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := build(spec, out); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, "images.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return out, m
}

func TestArchivesHoldTheImagesWithTheirFilesModesAndConfig(t *testing.T) {
	out, m := buildFixture(t, fixture(t))
	if len(m.Images) != 2 || m.Images[0].Ref != "registry.k8s.io/tool:v1" || m.Images[0].File != "tool.tar" {
		t.Fatalf("manifest: %+v", m)
	}
	sum, _, err := fileSHA256(filepath.Join(out, "tool.tar"))
	if err != nil || sum != m.Images[0].SHA256 {
		t.Fatalf("images.json sha256 %s, file has %s (%v)", m.Images[0].SHA256, sum, err)
	}
	tag, _ := name.NewTag("registry.k8s.io/tool:v1")
	img, err := tarball.ImageFromPath(filepath.Join(out, "tool.tar"), &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture == "" || cfg.Config.Entrypoint[0] != "/usr/local/bin/tool" ||
		cfg.Config.Env[0] != "PATH=/usr/local/bin:/usr/sbin" || cfg.Created.Year() != 2025 {
		t.Fatalf("config: %+v", cfg)
	}
	id, _ := img.ConfigName()
	if id.String() != m.Images[0].ImageID {
		t.Fatalf("images.json imageId %s, archive has %s", m.Images[0].ImageID, id)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("want 2 layers, got %d (%v)", len(layers), err)
	}
	got := map[string]*tar.Header{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got[h.Name] = h
		}
		rc.Close()
	}
	want := map[string]struct {
		typ  byte
		mode int64
	}{
		"usr/":                       {tar.TypeDir, 0o755},
		"usr/sbin/xtables-nft-multi": {tar.TypeReg, 0o755},
		"usr/sbin/iptables":          {tar.TypeSymlink, 0o777},
		"usr/local/bin/":             {tar.TypeDir, 0o755},
		"usr/local/bin/tool":         {tar.TypeReg, 0o755},
		"etc/passwd":                 {tar.TypeReg, 0o644},
		"tmp/":                       {tar.TypeDir, 0o1777},
	}
	for n, w := range want {
		h, ok := got[n]
		if !ok {
			t.Errorf("layer entry %s missing (have %v)", n, keys(got))
			continue
		}
		if h.Typeflag != w.typ || h.Mode&0o7777 != w.mode || h.Uid != 0 || h.Uname != "" || h.ModTime.Year() != 2025 {
			t.Errorf("%s: type %c mode %o uid %d %q time %v", n, h.Typeflag, h.Mode, h.Uid, h.Uname, h.ModTime)
		}
	}
	if got["usr/sbin/iptables"].Linkname != "xtables-nft-multi" {
		t.Errorf("symlink target %q", got["usr/sbin/iptables"].Linkname)
	}
}

func keys(m map[string]*tar.Header) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

func TestTheSameInputsGiveTheSameArchives(t *testing.T) {
	spec := fixture(t)
	_, a := buildFixture(t, spec)
	// The same content at another time (a rebuilt binary, a fresh unpack) packs the same.
	later := time.Now().Add(time.Hour)
	err := filepath.WalkDir(filepath.Dir(spec), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, later, later)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, b := buildFixture(t, spec)
	for i := range a.Images {
		if a.Images[i].SHA256 != b.Images[i].SHA256 || a.Images[i].ManifestDigest != b.Images[i].ManifestDigest {
			t.Fatalf("%s differs between two builds: %+v vs %+v", a.Images[i].Ref, a.Images[i], b.Images[i])
		}
	}
}

func TestSpecErrorsNameTheFieldAndTheFix(t *testing.T) {
	cases := map[string]struct{ from, to, want string }{
		"unknown layer":  {`"layers": ["base"] }`, `"layers": ["nope"] }`, `images[1] (registry.k8s.io/other:v2): layer "nope" is not defined in "layers"`},
		"untagged ref":   {`registry.k8s.io/other:v2`, `other`, `images[1].ref "other" is not a full image reference`},
		"bad file":       {`"other.tar"`, `"a/other.tar"`, `images[1].file "a/other.tar" must be a plain file name`},
		"relative path":  {`"/etc/passwd"`, `"etc/passwd"`, `layers.tool.files[1].path "etc/passwd" must be a clean absolute path`},
		"bad mode":       {`"1777"`, `"rwx"`, `layers.tool.files[2].mode "rwx" is not an octal mode`},
		"no created":     {`"created": "2025-01-02T03:04:05Z",`, ``, `"created" is missing`},
		"unknown field":  {`"entrypoint"`, `"entrypiont"`, `unknown field "entrypiont"`},
		"two file kinds": {`"content": "root`, `"link": "x", "content": "root`, `give at most one of "src", "content" and "link"`},
	}
	for n, c := range cases {
		t.Run(n, func(t *testing.T) {
			file := fixture(t)
			data, _ := os.ReadFile(file)
			if !strings.Contains(string(data), c.from) {
				t.Fatalf("fixture has no %q", c.from)
			}
			if err := os.WriteFile(file, []byte(strings.Replace(string(data), c.from, c.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := readSpec(file)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), file) {
				t.Fatalf("want an error starting with %s and containing %q, got %v", file, c.want, err)
			}
		})
	}
}
