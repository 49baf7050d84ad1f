package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// Spec describes the images to build: named layers, and images made of them.
type Spec struct {
	// Created is the time written into every image config, history entry and layer
	// file, so that the same inputs give the same digests.
	Created time.Time            `json:"created"`
	Layers  map[string]LayerSpec `json:"layers"`
	Images  []ImageSpec          `json:"images"`
}

// LayerSpec is one layer: a whole directory tree (a root file system), or a list of
// entries. A layer used by several images is packed once and shared.
type LayerSpec struct {
	Dir   string      `json:"dir,omitempty"`
	Files []EntrySpec `json:"files,omitempty"`
}

// EntrySpec is one entry of a layer: a file copied from Src, a file with Content, a
// symbolic link to Link, or (none of these) a directory.
type EntrySpec struct {
	Path    string  `json:"path"`
	Src     string  `json:"src,omitempty"`
	Content *string `json:"content,omitempty"`
	Link    string  `json:"link,omitempty"`
	// Mode is octal ("0755"); default: Src's permissions, 0644 for Content, 0755 for a
	// directory.
	Mode string `json:"mode,omitempty"`
}

// ImageSpec is one image, written to its own archive File (docker-archive format, which
// `ctr images import` and `docker load` accept).
type ImageSpec struct {
	Ref        string   `json:"ref"`
	File       string   `json:"file"`
	Layers     []string `json:"layers"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	User       string   `json:"user,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
}

// readSpec reads and checks a spec file; errors name the file, the field and the fix.
func readSpec(file string) (*Spec, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	spec := &Spec{}
	if err := dec.Decode(spec); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := spec.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return spec, nil
}

func (s *Spec) check() error {
	if s.Created.IsZero() {
		return fmt.Errorf(`"created" is missing: give a fixed time (RFC 3339) so builds are reproducible`)
	}
	for layerName, l := range s.Layers {
		if (l.Dir == "") == (len(l.Files) == 0) {
			return fmt.Errorf(`layers.%s: give either "dir" or "files"`, layerName)
		}
		for i, e := range l.Files {
			field := fmt.Sprintf("layers.%s.files[%d]", layerName, i)
			if !path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path || e.Path == "/" {
				return fmt.Errorf(`%s.path %q must be a clean absolute path below / (e.g. "/usr/local/bin/etcd")`, field, e.Path)
			}
			kinds := 0
			for _, set := range []bool{e.Src != "", e.Content != nil, e.Link != ""} {
				if set {
					kinds++
				}
			}
			if kinds > 1 {
				return fmt.Errorf(`%s (%s): give at most one of "src", "content" and "link"`, field, e.Path)
			}
			if e.Mode != "" {
				if _, err := strconv.ParseUint(e.Mode, 8, 32); err != nil {
					return fmt.Errorf(`%s.mode %q is not an octal mode (e.g. "0755")`, field, e.Mode)
				}
			}
		}
	}
	files := map[string]bool{}
	for i, img := range s.Images {
		field := fmt.Sprintf("images[%d]", i)
		if _, err := name.NewTag(img.Ref, name.StrictValidation); err != nil {
			return fmt.Errorf("%s.ref %q is not a full image reference with a tag (e.g. registry.k8s.io/pause:3.10.1): %w", field, img.Ref, err)
		}
		if img.File == "" || strings.Contains(img.File, "/") || !strings.HasSuffix(img.File, ".tar") {
			return fmt.Errorf(`%s.file %q must be a plain file name ending in .tar`, field, img.File)
		}
		if files[img.File] {
			return fmt.Errorf("%s.file %q is used by another image too", field, img.File)
		}
		files[img.File] = true
		if len(img.Layers) == 0 {
			return fmt.Errorf("%s (%s): layers is empty", field, img.Ref)
		}
		for _, l := range img.Layers {
			if _, ok := s.Layers[l]; !ok {
				return fmt.Errorf(`%s (%s): layer %q is not defined in "layers"`, field, img.Ref, l)
			}
		}
	}
	return nil
}
