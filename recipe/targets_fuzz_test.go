package recipe

import (
	"bytes"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzReadSoftTargets: any file given to `train --soft-targets`. The reader never panics;
// it refuses with an error naming the file, or accepts what encoding/csv reads row for row,
// each row a distribution (finite, >= 0, summing to 1) proportional to its weights, which
// reads back the same when written out again.
func FuzzReadSoftTargets(f *testing.F) {
	classes := []string{"angry", "happy", "normal", "sad"}
	path := filepath.Join(f.TempDir(), "targets.csv")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := ReadSoftTargets(path, classes)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "soft targets "+path) {
				t.Fatalf("%q: error %q does not name the file", data, err)
			}
			return
		}
		records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil || len(records)-1 != st.Len() {
			t.Fatalf("%q: %d rows accepted, encoding/csv reads %d records (%v)", data, st.Len(), len(records), err)
		}
		header := records[0]
		var out bytes.Buffer
		w := csv.NewWriter(&out)
		w.Write(append([]string{"file"}, classes...))
		for _, rec := range records[1:] {
			p := st.byFile[filepath.Clean(strings.TrimSpace(rec[0]))]
			if len(p) != len(classes) {
				t.Fatalf("%q: row %q has no distribution", data, rec[0])
			}
			var sum float64
			row := []string{rec[0]}
			for i, c := range classes {
				col := slices.IndexFunc(header, func(h string) bool { return strings.TrimSpace(h) == c })
				w, _ := strconv.ParseFloat(strings.TrimSpace(rec[col]), 64)
				sum += w
				if math.IsNaN(float64(p[i])) || math.IsInf(float64(p[i]), 0) || p[i] < 0 {
					t.Fatalf("%q: row %q: %s = %v", data, rec[0], c, p[i])
				}
				row = append(row, strconv.FormatFloat(float64(p[i]), 'g', -1, 32))
			}
			var total float64
			for i, c := range classes {
				col := slices.IndexFunc(header, func(h string) bool { return strings.TrimSpace(h) == c })
				w, _ := strconv.ParseFloat(strings.TrimSpace(rec[col]), 64)
				if want := w / sum; math.Abs(float64(p[i])-want) > 1e-6 {
					t.Fatalf("%q: row %q: %s = %v, its weight says %v", data, rec[0], c, p[i], want)
				}
				total += float64(p[i])
			}
			if math.Abs(total-1) > 1e-5 {
				t.Fatalf("%q: row %q sums to %v", data, rec[0], total)
			}
			w.Write(row)
		}
		w.Flush()
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		back, err := ReadSoftTargets(path, classes)
		if err != nil || back.Len() != st.Len() {
			t.Fatalf("%q written back as %q: %v", data, out.Bytes(), err)
		}
		for key, p := range st.byFile {
			q := back.byFile[key]
			for i := range p {
				if len(q) != len(p) || math.Abs(float64(p[i]-q[i])) > 1e-6 {
					t.Fatalf("%q: row %q read back as %v, was %v", data, key, q, p)
				}
			}
		}
	})
}
