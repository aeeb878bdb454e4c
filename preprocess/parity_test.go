package preprocess

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The decode parity test decodes every variant written by testdata/parity/gen.py (Pillow, the
// pinned version, writes most; the generator writes the rest by hand) through the decoder
// training and serving use, and compares the pixels with Pillow's decoding of the same file.
// Regenerate the fixtures with `.venv/bin/python preprocess/testdata/parity/gen.py`.

var parityTable = flag.String("parity-table", "", "write the decode parity table (Markdown) to this file")

const parityDir = "testdata/parity"

type parityManifest struct {
	Pillow   string          `json:"pillow"`
	Width    int             `json:"width"`
	Height   int             `json:"height"`
	Variants []parityVariant `json:"variants"`
}

type parityVariant struct {
	Name            string `json:"name"`
	File            string `json:"file"`
	Family          string `json:"family"`
	Label           string `json:"label"`
	Lossy           bool   `json:"lossy"`
	Pillow          bool   `json:"pillow"`
	PillowError     string `json:"pillow_error"`
	Reference       string `json:"reference"`
	ReferenceSource string `json:"reference_source"`
}

// Tolerances against Pillow's pixels, per channel value (0-255). Lossless variants must match
// but for a rounding step in colour conversion or alpha compositing. Lossy WebP matches
// libwebp exactly (ycbcr.go); JPEG differs by the inverse DCT alone (Go's image/jpeg against
// libjpeg-turbo's islow), a few levels at most. Before ycbcr.go, Go's replicated chroma
// differed from libjpeg-turbo's interpolated chroma by a mean of 6.5 and up to 70 on 4:2:0
// JPEG, and x/image/webp's full-range conversion by a mean of 10 on lossy WebP: these bounds
// catch either coming back.
const (
	losslessMaxDiff = 1
	lossyMeanDiff   = 0.5
	lossyMaxDiff    = 8
)

// refusedVariants are the variants Pillow decodes that the README lists as deliberately
// unsupported, with the words their one-line refusal must contain.
var refusedVariants = map[string]string{
	"jpeg-arithmetic":             "arithmetic-coded JPEG",
	"jpeg-arithmetic-progressive": "arithmetic-coded JPEG",
	"tiff-rgb-lzma":               "LZMA",
	"tiff-bilevel-ccitt-rle":      "CCITT modified Huffman",
}

type parityResult struct {
	v          parityVariant
	err        error
	compared   bool
	mean       float64
	maxDiff    int
	withinTol  bool
	readmeRow  string
	readmeSays string
}

func TestDecodeParity(t *testing.T) {
	m := loadParityManifest(t)
	if want := pinnedRequirement(t, "pillow"); m.Pillow != want {
		t.Fatalf("fixtures were generated with Pillow %s, savedmodel/requirements.txt pins %s: regenerate them (gen.py)", m.Pillow, want)
	}
	readme := readmeParityRows(t)
	var results []parityResult
	pillowDecodes, weDecode := 0, 0
	for _, v := range m.Variants {
		r := parityResult{v: v}
		data := mustRead(t, filepath.Join(parityDir, v.File))
		img, err := decodeRGBA(v.File, data, DefaultMaxPixels)
		r.err = err
		if err == nil && v.Reference != "" {
			if img.Rect.Dx() != m.Width || img.Rect.Dy() != m.Height {
				t.Errorf("%s: decoded %dx%d, want %dx%d", v.Name, img.Rect.Dx(), img.Rect.Dy(), m.Width, m.Height)
			} else {
				r.compared = true
				r.mean, r.maxDiff = diffRGB(img.Pix, readReference(t, v.Reference, m.Width*m.Height*3))
				if v.Lossy {
					r.withinTol = r.mean <= lossyMeanDiff && r.maxDiff <= lossyMaxDiff
				} else {
					r.withinTol = r.maxDiff <= losslessMaxDiff
				}
			}
		}
		if v.Pillow {
			pillowDecodes++
			if err == nil && r.withinTol {
				weDecode++
			}
		}
		checkParityOutcome(t, r, readme)
		results = append(results, r)
	}
	for name := range readme {
		if !hasVariant(m.Variants, name) {
			t.Errorf("README's decode parity table lists %q, which gen.py does not write", name)
		}
	}
	table := parityMarkdown(m, results, pillowDecodes, weDecode)
	t.Logf("decode parity: %d of %d variants Pillow decodes are decoded\n%s", weDecode, pillowDecodes, table)
	if *parityTable != "" {
		if err := os.WriteFile(*parityTable, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkParityOutcome fails the test when a variant is neither decoded within tolerance nor
// refused as documented, and when the README's row says otherwise.
func checkParityOutcome(t *testing.T, r parityResult, readme map[string]readmeRow) {
	t.Helper()
	v := r.v
	row, listed := readme[v.Name]
	switch {
	case !listed:
		t.Errorf("%s: not in the README's decode parity table", v.Name)
	case row.pillow != yesNo(v.Pillow):
		t.Errorf("%s: README says Pillow %q, the fixture says %q", v.Name, row.pillow, yesNo(v.Pillow))
	case row.emotions != outcomeWord(r):
		t.Errorf("%s: README says emotions %q, measured %q (%v)", v.Name, row.emotions, outcomeWord(r), r.err)
	}
	if r.err != nil {
		msg := r.err.Error()
		if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, v.File+": ") || strings.Contains(msg, "crashed") {
			t.Errorf("%s: refusal must be one line naming the file, got %q", v.Name, msg)
		}
		if v.Pillow {
			words, documented := refusedVariants[v.Name]
			if !documented {
				t.Errorf("%s: Pillow decodes it, we refuse it: %v", v.Name, r.err)
			} else if !strings.Contains(msg, words) {
				t.Errorf("%s: refusal %q does not name the variant (%q)", v.Name, msg, words)
			}
		}
		return
	}
	if _, documented := refusedVariants[v.Name]; documented {
		t.Errorf("%s: decoded, but listed as deliberately unsupported", v.Name)
	}
	if r.compared && !r.withinTol {
		t.Errorf("%s: pixels differ from %s's: mean %.2f, max %d", v.Name, referenceName(v), r.mean, r.maxDiff)
	}
}

func outcomeWord(r parityResult) string {
	switch {
	case r.err != nil:
		return "refused"
	case r.compared && !r.withinTol:
		return "differs"
	}
	return "yes"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func referenceName(v parityVariant) string {
	if v.ReferenceSource == "generator" {
		return "the generator"
	}
	return "Pillow"
}

func hasVariant(vs []parityVariant, name string) bool {
	for _, v := range vs {
		if v.Name == name {
			return true
		}
	}
	return false
}

func diffRGB(rgba []uint8, ref []uint8) (mean float64, maxDiff int) {
	sum := 0
	for i := range len(ref) / 3 {
		for c := range 3 {
			d := int(rgba[4*i+c]) - int(ref[3*i+c])
			d = max(d, -d)
			sum += d
			maxDiff = max(maxDiff, d)
		}
	}
	return float64(sum) / float64(len(ref)), maxDiff
}

func loadParityManifest(t *testing.T) parityManifest {
	t.Helper()
	var m parityManifest
	if err := json.Unmarshal(mustRead(t, filepath.Join(parityDir, "manifest.json")), &m); err != nil {
		t.Fatalf("parity manifest: %v", err)
	}
	if len(m.Variants) == 0 || m.Width <= 0 || m.Height <= 0 {
		t.Fatalf("parity manifest is empty")
	}
	return m
}

func readReference(t *testing.T, name string, size int) []uint8 {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(mustRead(t, filepath.Join(parityDir, name))))
	if err != nil {
		t.Fatalf("reference %s: %v", name, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, int64(size)+1))
	if err != nil || len(raw) != size {
		t.Fatalf("reference %s: %d bytes (%v), want %d", name, len(raw), err, size)
	}
	return raw
}

// pinnedRequirement is the version savedmodel/requirements.txt pins for a Python package.
func pinnedRequirement(t *testing.T, pkg string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "savedmodel", "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), pkg+"=="); ok {
			return v
		}
	}
	t.Fatalf("savedmodel/requirements.txt does not pin %s", pkg)
	return ""
}

type readmeRow struct{ pillow, emotions string }

var readmeVariantRow = regexp.MustCompile("^\\| `([a-z0-9-]+)` \\|[^|]*\\| (yes|no) \\| (yes|refused|differs) \\|")

// readmeParityRows reads the README's decode parity table: variant, label, Pillow, emotions, notes.
func readmeParityRows(t *testing.T) map[string]readmeRow {
	t.Helper()
	text := string(mustRead(t, filepath.Join("..", "README.md")))
	_, section, ok := strings.Cut(text, "\n## Decode parity")
	if !ok {
		t.Fatal(`README.md has no "## Decode parity" section`)
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	rows := map[string]readmeRow{}
	for _, line := range strings.Split(section, "\n") {
		if m := readmeVariantRow.FindStringSubmatch(line); m != nil {
			rows[m[1]] = readmeRow{pillow: m[2], emotions: m[3]}
		}
	}
	return rows
}

// parityMarkdown is the table as the README shows it, with the measured differences.
func parityMarkdown(m parityManifest, results []parityResult, pillowDecodes, weDecode int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d variants Pillow %s decodes are decoded within tolerance.\n\n", weDecode, pillowDecodes, m.Pillow)
	b.WriteString("| variant | what | Pillow | emotions | notes |\n|---|---|---|---|---|\n")
	for _, r := range results {
		note := ""
		switch {
		case r.err != nil:
			note = r.err.Error()
			if i := strings.Index(note, ": "); i >= 0 {
				note = note[i+2:]
			}
		case r.compared:
			note = fmt.Sprintf("max diff %d, mean %.2f", r.maxDiff, r.mean)
			if r.v.ReferenceSource == "generator" {
				note += " (against the generator's pixels)"
			}
		}
		if !r.v.Pillow {
			note = strings.TrimPrefix(note+"; Pillow: "+r.v.PillowError, "; ")
		}
		fmt.Fprintf(&b, "| `%s` | %s %s | %s | %s | %s |\n", r.v.Name, r.v.Family, r.v.Label, yesNo(r.v.Pillow), outcomeWord(r), strings.ReplaceAll(note, "|", "/"))
	}
	return b.String()
}
