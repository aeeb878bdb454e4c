package experiment

import (
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/emotions-dev/emotions/preprocess"
)

// splitSpec is the split step, the runner's one in-process step. It makes OUT/train and
// OUT/valid from a pool of class folders (From): each person goes to valid when the hash of
// their name falls under ValidPercent, so no identity is in both and the split is the same
// on every machine. Two uses:
//   - a pool without a validation split (faces-pretrain), so pre-training watches a real
//     val_loss: {"split": {"from": "${faces-pretrain}", "valid-percent": 10}};
//   - moving people from a validation set into training while keeping one: faces4's train
//     has 9 sad people, its valid 24, so {"from": "${data}/valid", "valid-percent": 50,
//     "train": "${data}/train", "test": "${data}/test"} trains on train plus half of
//     valid's people, validates on the other half and keeps test as it is.
//
// Train (optional) is added to OUT/train whole; a person of the pool who is also in Train
// is refused rather than split, since that would put one identity on both sides. Test
// (optional) becomes OUT/test unchanged, so OUT is a complete --data directory. Files are
// hard links (copies across filesystems).
type splitSpec struct {
	From, Train, Test string
	ValidPercent      int
}

func split(sp splitSpec, out string) error {
	if sp.ValidPercent <= 0 || sp.ValidPercent >= 100 {
		return fmt.Errorf("split: valid-percent %d: want 1..99", sp.ValidPercent)
	}
	inTrain := map[string]string{} // person -> a file of theirs in Train
	counts := map[string]int{}
	if sp.Train != "" {
		n, err := linkClassFolders(sp.Train, filepath.Join(out, "train"), func(class, name string) {
			inTrain[preprocess.PersonOf(name)] = filepath.Join(sp.Train, class, name)
		})
		if err != nil {
			return err
		}
		counts["train"] += n
	}
	err := walkClassFolders(sp.From, func(class, name string) error {
		person := preprocess.PersonOf(name)
		part := "train"
		if bucket(person) < sp.ValidPercent {
			part = "valid"
			if other, ok := inTrain[person]; ok {
				return fmt.Errorf("split: %s: %s would be in valid but is also in %s: one identity on both sides",
					filepath.Join(sp.From, class, name), person, other)
			}
		}
		if err := linkFile(sp.From, filepath.Join(out, part), class, name); err != nil {
			return err
		}
		counts[part]++
		return nil
	})
	if err != nil {
		return err
	}
	if counts["train"] == 0 || counts["valid"] == 0 {
		return fmt.Errorf("split: %s gave %d training and %d validation files: want class folders of images", sp.From, counts["train"], counts["valid"])
	}
	if sp.Test != "" {
		if _, err := linkClassFolders(sp.Test, filepath.Join(out, "test"), nil); err != nil {
			return err
		}
	}
	return nil
}

// walkClassFolders calls fn for every regular, non-hidden file of dir's class folders.
func walkClassFolders(dir string, fn func(class, name string) error) error {
	classes, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("split: %w", err)
	}
	for _, c := range classes {
		if !c.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, c.Name()))
		if err != nil {
			return fmt.Errorf("split: %w", err)
		}
		for _, f := range files {
			if !f.Type().IsRegular() || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			if err := fn(c.Name(), f.Name()); err != nil {
				return err
			}
		}
	}
	return nil
}

// linkClassFolders links every file of src's class folders into dst/<class>/, calling seen
// (when not nil) for each, and returns how many it linked.
func linkClassFolders(src, dst string, seen func(class, name string)) (int, error) {
	n := 0
	err := walkClassFolders(src, func(class, name string) error {
		if err := linkFile(src, dst, class, name); err != nil {
			return err
		}
		if seen != nil {
			seen(class, name)
		}
		n++
		return nil
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("split: %s has no class folders with files", src)
	}
	return n, err
}

// linkFile links src/class/name to dst/class/name, creating the class folder.
func linkFile(src, dst, class, name string) error {
	if err := os.MkdirAll(filepath.Join(dst, class), 0o755); err != nil {
		return fmt.Errorf("split: %w", err)
	}
	return linkOrCopy(filepath.Join(src, class, name), filepath.Join(dst, class, name))
}

// sameFiles reports the first file (class/name) that is in one of a and b but not the
// other, or "" when both hold the same class folders and file names.
func sameFiles(a, b string) (string, error) {
	list := func(dir string) (map[string]bool, error) {
		m := map[string]bool{}
		err := walkClassFolders(dir, func(class, name string) error {
			m[filepath.Join(class, name)] = true
			return nil
		})
		return m, err
	}
	ma, err := list(a)
	if err != nil {
		return "", err
	}
	mb, err := list(b)
	if err != nil {
		return "", err
	}
	var diff []string
	for k := range ma {
		if !mb[k] {
			diff = append(diff, k+" (only in "+a+")")
		}
	}
	for k := range mb {
		if !ma[k] {
			diff = append(diff, k+" (only in "+b+")")
		}
	}
	if len(diff) == 0 {
		return "", nil
	}
	sort.Strings(diff)
	return diff[0], nil
}

func bucket(s string) int {
	h := fnv.New32a()
	h.Write([]byte(s))
	return int(h.Sum32() % 100)
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("split: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("split: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("split: copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("split: %s: %w", dst, err)
	}
	return nil
}
