package main

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// entry is one file, directory or symbolic link of a layer, with its header made by
// archive/tar from the source's file info and then normalised: owner root, fixed time.
type entry struct {
	header *tar.Header
	src    string  // regular file to copy, or ""
	data   *string // content of a regular file, or nil
}

func normalise(h *tar.Header, name string, created time.Time) {
	h.Name = name
	if h.Typeflag == tar.TypeDir && !strings.HasSuffix(h.Name, "/") {
		h.Name += "/"
	}
	h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
	h.ModTime, h.AccessTime, h.ChangeTime = created, time.Time{}, time.Time{}
	h.PAXRecords = nil
	h.Format = tar.FormatPAX
}

// dirEntries is every entry below root, as the tree has them (modes, links), in order.
func dirEntries(root string, created time.Time) ([]entry, error) {
	var entries []entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		normalise(h, filepath.ToSlash(rel), created)
		e := entry{header: h}
		switch h.Typeflag {
		case tar.TypeReg:
			e.src = p
		case tar.TypeDir, tar.TypeSymlink:
		default:
			return fmt.Errorf("%s: only files, directories and symbolic links can go into a layer", p)
		}
		entries = append(entries, e)
		return nil
	})
	return entries, err
}

// fileEntries is the listed entries plus their parent directories (0755), sorted.
func fileEntries(files []EntrySpec, created time.Time) ([]entry, error) {
	byName := map[string]entry{}
	for _, f := range files {
		name := strings.TrimPrefix(f.Path, "/")
		var h *tar.Header
		e := entry{}
		switch {
		case f.Src != "":
			info, err := os.Stat(f.Src)
			if err != nil {
				return nil, err
			}
			if !info.Mode().IsRegular() {
				return nil, fmt.Errorf("%s (for %s) is not a regular file", f.Src, f.Path)
			}
			if h, err = tar.FileInfoHeader(info, ""); err != nil {
				return nil, err
			}
			e.src = f.Src
		case f.Content != nil:
			h = &tar.Header{Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(*f.Content))}
			e.data = f.Content
		case f.Link != "":
			h = &tar.Header{Typeflag: tar.TypeSymlink, Linkname: f.Link, Mode: 0o777}
		default:
			h = &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}
		}
		if f.Mode != "" {
			mode, _ := strconv.ParseUint(f.Mode, 8, 32) // checked by Spec.check
			h.Mode = int64(mode)
		}
		normalise(h, name, created)
		e.header = h
		if _, dup := byName[strings.TrimSuffix(h.Name, "/")]; dup {
			return nil, fmt.Errorf("%s is listed twice", f.Path)
		}
		byName[strings.TrimSuffix(h.Name, "/")] = e
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := byName[dir]; !ok {
				d := &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}
				normalise(d, dir, created)
				byName[dir] = entry{header: d}
			}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	entries := make([]entry, 0, len(names))
	for _, n := range names {
		entries = append(entries, byName[n])
	}
	return entries, nil
}

// writeTar writes the entries as an uncompressed tar stream.
func writeTar(w io.Writer, entries []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := tw.WriteHeader(e.header); err != nil {
			return fmt.Errorf("%s: %w", e.header.Name, err)
		}
		switch {
		case e.data != nil:
			if _, err := io.WriteString(tw, *e.data); err != nil {
				return err
			}
		case e.src != "":
			f, err := os.Open(e.src)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", e.src, err)
			}
			if n != e.header.Size {
				return fmt.Errorf("%s changed while it was packed", e.src)
			}
		}
	}
	return tw.Close()
}

// buildLayer packs a layer into a tar file in tmp and opens it as an image layer.
func buildLayer(spec *Spec, layerName, tmp string) (v1.Layer, error) {
	l := spec.Layers[layerName]
	var entries []entry
	var err error
	if l.Dir != "" {
		entries, err = dirEntries(l.Dir, spec.Created)
	} else {
		entries, err = fileEntries(l.Files, spec.Created)
	}
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", layerName, err)
	}
	file := filepath.Join(tmp, layerName+".tar")
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := writeTar(f, entries); err != nil {
		f.Close()
		return nil, fmt.Errorf("layer %s: %w", layerName, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	// Compressed once and kept: the digest and the archive need the same bytes.
	return tarball.LayerFromFile(file, tarball.WithCompressedCaching)
}
