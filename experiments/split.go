package experiments

import (
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/emotions-dev/emotions/preprocess"
)

// split is the runner's one in-process step: it makes DATA/train and DATA/valid from a pool
// of class folders that has no validation split (faces-pretrain), so a pre-training run can
// watch a real val_loss. Files are hard links (copies across filesystems). Photos named
// Person_Name_0001.jpg are grouped by person, so no identity is in both splits; the split is
// a hash of the name, hence the same on every machine.
func split(from, out string, validPercent int) error {
	if validPercent <= 0 || validPercent >= 100 {
		return fmt.Errorf("split: valid-percent %d: want 1..99", validPercent)
	}
	classes, err := os.ReadDir(from)
	if err != nil {
		return fmt.Errorf("split: %w", err)
	}
	counts := map[string]int{}
	for _, c := range classes {
		if !c.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(from, c.Name()))
		if err != nil {
			return fmt.Errorf("split: %w", err)
		}
		for _, f := range files {
			if !f.Type().IsRegular() || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			part := "train"
			if bucket(preprocess.PersonOf(f.Name())) < validPercent {
				part = "valid"
			}
			dir := filepath.Join(out, part, c.Name())
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("split: %w", err)
			}
			if err := linkOrCopy(filepath.Join(from, c.Name(), f.Name()), filepath.Join(dir, f.Name())); err != nil {
				return err
			}
			counts[part]++
		}
	}
	if counts["train"] == 0 || counts["valid"] == 0 {
		return fmt.Errorf("split: %s gave %d training and %d validation files: want class folders of images", from, counts["train"], counts["valid"])
	}
	return nil
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
