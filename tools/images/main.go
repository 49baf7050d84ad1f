// Command images packs OCI images for g8s's nodes with go-containerregistry: it reads a
// spec (layers made of files or whole directory trees, images made of layers), writes
// one docker-archive file per image (what `ctr -n k8s.io images import` takes) and a
// manifest, images.json, with each image's reference, file and digests.
//
//	images -spec spec.json -out DIR
//
// tools/build.sh (step node-images) writes the spec; see tools/README.md.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Manifest is images.json.
type Manifest struct {
	Images []ManifestImage `json:"images"`
}

// ManifestImage is one packed image.
type ManifestImage struct {
	Ref string `json:"ref"`
	// File is the archive, relative to images.json; SHA256 and Size are the file's.
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// ImageID is the digest of the image config (what `crictl images` shows as IMAGE ID);
	// ManifestDigest that of the image manifest go-containerregistry computed.
	ImageID        string   `json:"imageId"`
	ManifestDigest string   `json:"manifestDigest"`
	Layers         []string `json:"layers"`
}

func main() {
	specFile := flag.String("spec", "", "the spec file (JSON)")
	out := flag.String("out", "", "folder for the archives and images.json")
	flag.Parse()
	if *specFile == "" || *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: images -spec spec.json -out DIR")
		os.Exit(2)
	}
	spec, err := readSpec(*specFile)
	if err == nil {
		err = build(spec, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

// build writes every image of the spec and images.json into out.
func build(spec *Spec, out string) error {
	tmp, err := os.MkdirTemp(out, ".layers.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	layers := map[string]v1.Layer{}
	manifest := Manifest{Images: []ManifestImage{}}
	for _, is := range spec.Images {
		img, err := image(spec, is, layers, tmp)
		if err != nil {
			return fmt.Errorf("%s: %w", is.Ref, err)
		}
		ref, err := name.NewTag(is.Ref, name.StrictValidation)
		if err != nil {
			return err
		}
		file := filepath.Join(out, is.File)
		if err := tarball.WriteToFile(file, ref, img); err != nil {
			return fmt.Errorf("%s: %w", is.Ref, err)
		}
		entry := ManifestImage{Ref: is.Ref, File: is.File, Layers: is.Layers}
		if entry.SHA256, entry.Size, err = fileSHA256(file); err != nil {
			return err
		}
		id, err := img.ConfigName()
		if err != nil {
			return err
		}
		digest, err := img.Digest()
		if err != nil {
			return err
		}
		entry.ImageID, entry.ManifestDigest = id.String(), digest.String()
		manifest.Images = append(manifest.Images, entry)
	}
	data, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "images.json"), append(data, '\n'), 0o644)
}

// image assembles one image from its layers (each packed once, then shared).
func image(spec *Spec, is ImageSpec, layers map[string]v1.Layer, tmp string) (v1.Image, error) {
	cfg := &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: spec.Created},
		Config: v1.Config{
			Entrypoint: is.Entrypoint,
			Cmd:        is.Cmd,
			Env:        is.Env,
			User:       is.User,
			WorkingDir: is.WorkingDir,
		},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, err
	}
	for _, l := range is.Layers {
		layer, ok := layers[l]
		if !ok {
			if layer, err = buildLayer(spec, l, tmp); err != nil {
				return nil, err
			}
			layers[l] = layer
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:   layer,
			History: v1.History{Created: v1.Time{Time: spec.Created}, CreatedBy: "g8s tools/images: layer " + l},
		})
		if err != nil {
			return nil, err
		}
	}
	return img, nil
}

func fileSHA256(file string) (string, int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
