// Package atomicfs writes files and whole directories so that a reader (or a run killed with
// kill -9 at any moment) sees either the old content or the new, never half of it: write to a
// temporary name in the same directory, fsync, then rename over the target.
//
// Replacing a whole directory needs an atomic exchange of two names: renameat2
// RENAME_EXCHANGE on Linux, renamex_np RENAME_SWAP on macOS. Where neither exists (other
// unixes, or a filesystem that refuses the exchange) Replace moves the old directory aside
// and then renames the new one in: the directory is then missing for an instant between the
// two renames, and a process killed in that instant leaves the complete old copy under
// DST.tmp-*.old and the complete new one under its temporary name, but no DST. Files
// (WriteFile) are always replaced atomically: rename(2) over a file is atomic everywhere.
package atomicfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile writes data to path atomically.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFileFunc(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFileFunc streams write's output to path atomically.
func WriteFileFunc(path string, perm os.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fsyncFile(f); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return syncDir(dir)
}

// TempDir makes a temporary directory beside dst (same filesystem, so the final rename is
// atomic); its name starts with a dot so listings of versions or runs skip it.
func TempDir(dst string) (string, error) {
	parent := filepath.Dir(dst)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create a temporary directory beside %s: %w", dst, err)
	}
	return tmp, os.Chmod(tmp, 0o755)
}

// WriteDir fills a temporary directory with fill, fsyncs everything in it, and puts it in
// place of dst. An existing dst is swapped out in one step where the system can exchange two
// names (see the package comment), so dst is a complete directory at every moment; the old
// content is then removed.
func WriteDir(dst string, fill func(tmp string) error) error {
	return writeDir(dst, fill, true)
}

// WriteDirNoSync is WriteDir without the fsyncs: dst is still replaced in one step, and a
// process killed at any moment (kill -9, the OOM killer) leaves the old or the new directory,
// because the files live in the kernel's page cache whatever happens to the process. What is
// lost is durability across a power cut or a kernel crash, after which the new files may be
// empty. It is for directories rewritten often whose last copy costs little to lose (a
// training loop's resume state), where the fsync would cost more than the write: on a VM disk
// it doubles the CPU time of writing the files, and a file replaced before the kernel's
// writeback (about 30 s) never has to reach the disk at all. SyncTree(dst) makes it durable
// later.
func WriteDirNoSync(dst string, fill func(tmp string) error) error {
	return writeDir(dst, fill, false)
}

// DirWriter is WriteDir when durable, else WriteDirNoSync: for callers that take the choice
// as a value.
func DirWriter(durable bool) func(dst string, fill func(tmp string) error) error {
	if durable {
		return WriteDir
	}
	return WriteDirNoSync
}

func writeDir(dst string, fill func(tmp string) error, durable bool) error {
	tmp, err := TempDir(dst)
	if err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if durable {
		if err := SyncTree(tmp); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	if err := replace(tmp, dst); err != nil {
		return err
	}
	if durable {
		return syncDir(filepath.Dir(dst))
	}
	return nil
}

// fsyncFile is (*os.File).Sync, replaceable by tests that count the fsyncs.
var fsyncFile = (*os.File).Sync

// exchangeNames is exchange, replaceable by tests to exercise the fallback on Linux.
var exchangeNames = exchange

// Replace moves the directory src to dst, atomically replacing any existing dst, and fsyncs
// dst's parent so the rename itself is durable.
func Replace(src, dst string) error {
	if err := replace(src, dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

func replace(src, dst string) error {
	_, err := os.Lstat(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("rename %s -> %s: %w", src, dst, err)
		}
	case err != nil:
		return fmt.Errorf("stat %s: %w", dst, err)
	default:
		if err := exchangeNames(src, dst); err != nil {
			// No atomic exchange here: move the old one aside first. dst is missing for
			// an instant; the old copy stays at src's name + ".old" until then.
			old := src + ".old"
			if err := os.Rename(dst, old); err != nil {
				return fmt.Errorf("replace %s: %w", dst, err)
			}
			if err := os.Rename(src, dst); err != nil {
				os.Rename(old, dst)
				return fmt.Errorf("replace %s: %w", dst, err)
			}
			src = old
		}
		// src now holds the previous content.
		if err := os.RemoveAll(src); err != nil {
			return fmt.Errorf("remove the previous %s: %w", dst, err)
		}
	}
	return nil
}

// MakeDurable fsyncs the tree at dir and dir's entry in its parent: it gives a directory put
// in place by WriteDirNoSync the durability WriteDir would have given it.
func MakeDurable(dir string) error {
	if err := SyncTree(dir); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// SyncTree fsyncs every file and directory under root.
func SyncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := fsyncFile(f); err != nil && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("fsync %s: %w", p, err)
		}
		return nil
	})
}

// LinkOrCopy makes dst hold src's content: a hard link when possible (files that are never
// rewritten in place, like saved_model.pb, need not be copied for every checkpoint), else a copy.
func LinkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s -> %s: %w", src, dst, err)
	}
	return out.Close()
}

// LinkTree reproduces the tree at src under dst with LinkOrCopy.
func LinkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return LinkOrCopy(p, target)
	})
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := fsyncFile(f); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
