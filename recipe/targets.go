package recipe

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// SoftTargets are training targets other than one-hot labels: a probability distribution
// over the model's classes per training file, e.g. a teacher model's outputs for knowledge
// distillation (Hinton et al. 2015), or a blend of a teacher's and a person's labels.
// Files without a row keep their folder's one-hot label.
type SoftTargets struct {
	Path string
	// byFile maps a cleaned path, relative to the training folder, to its distribution
	// in the model's class order.
	byFile map[string][]float32
}

// ReadSoftTargets reads a CSV whose header is "file" and the model's class names (in any
// order) and whose rows are a file, relative to the training folder (such as
// happy/img_001.jpg), and one non-negative weight per class; each row is normalised to
// sum to 1. Every problem is an error naming the file, the line and the reason.
func ReadSoftTargets(path string, classes []string) (*SoftTargets, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("soft targets: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("soft targets %s: read header: %w", path, err)
	}
	if len(header) != len(classes)+1 || strings.TrimSpace(header[0]) != "file" {
		return nil, fmt.Errorf("soft targets %s: header %q: want file and the model's %d classes (%s)",
			path, strings.Join(header, ","), len(classes), strings.Join(classes, ","))
	}
	column := make([]int, len(classes)) // CSV column of each model class
	for i, c := range classes {
		column[i] = slices.IndexFunc(header[1:], func(h string) bool { return strings.TrimSpace(h) == c }) + 1
		if column[i] == 0 {
			return nil, fmt.Errorf("soft targets %s: header %q has no column for class %q",
				path, strings.Join(header, ","), c)
		}
	}
	t := &SoftTargets{Path: path, byFile: map[string][]float32{}}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil { // a *csv.ParseError names the line; FieldPos would panic here
			return nil, fmt.Errorf("soft targets %s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		key := filepath.Clean(strings.TrimSpace(rec[0]))
		if _, dup := t.byFile[key]; dup {
			return nil, fmt.Errorf("soft targets %s:%d: %s listed twice", path, line, rec[0])
		}
		weights := make([]float64, len(classes)) // normalised in float64: 1e-320 is 0 in float32
		var sum float64
		for i, col := range column {
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[col]), 64)
			if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
				return nil, fmt.Errorf("soft targets %s:%d: %s: %s = %q: want a finite number >= 0",
					path, line, rec[0], classes[i], rec[col])
			}
			weights[i] = v
			sum += v
		}
		if sum <= 0 {
			return nil, fmt.Errorf("soft targets %s:%d: %s: all weights are 0", path, line, rec[0])
		}
		if math.IsInf(sum, 0) { // each weight finite, their sum not: normalising would give 0s
			return nil, fmt.Errorf("soft targets %s:%d: %s: weights too large to add up", path, line, rec[0])
		}
		p := make([]float32, len(classes))
		for i, w := range weights {
			p[i] = float32(w / sum)
		}
		t.byFile[key] = p
	}
	if len(t.byFile) == 0 {
		return nil, fmt.Errorf("soft targets %s: no rows", path)
	}
	return t, nil
}

// Rows returns, for files (training files as the dataset lists them, under root), each
// file's distribution or nil, and how many rows matched a file: the others may be images
// the preprocessor rejected, but none matching means a CSV made for another folder, an error.
func (t *SoftTargets) Rows(root string, files []string) (rows [][]float32, matched int, err error) {
	rows = make([][]float32, len(files))
	for i, f := range files {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			continue
		}
		if p, ok := t.byFile[filepath.Clean(rel)]; ok {
			rows[i] = p
			matched++
		}
	}
	if matched == 0 {
		return nil, 0, fmt.Errorf("soft targets %s: none of its %d files is in %s (paths are relative to the training folder, e.g. %s)",
			t.Path, len(t.byFile), root, relExample(root, files))
	}
	return rows, matched, nil
}

// Len is the number of rows (files) the CSV holds.
func (t *SoftTargets) Len() int { return len(t.byFile) }

func relExample(root string, files []string) string {
	if len(files) == 0 {
		return "class/image.jpg"
	}
	rel, err := filepath.Rel(root, files[0])
	if err != nil {
		return files[0]
	}
	return rel
}
