package preprocess

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/emotions-dev/emotions/savedmodel"
)

var classes = []string{"angry", "happy", "normal", "sad"}

// smallTree copies a few faces4 images per class into a temporary class-folder tree.
func smallTree(t *testing.T, perClass int) string {
	t.Helper()
	dir := t.TempDir()
	for _, c := range classes {
		files, _ := filepath.Glob(filepath.Join(faces4Dir, "valid", c, "*.jpg"))
		if len(files) < perClass {
			t.Fatalf("faces4 valid/%s has %d files", c, len(files))
		}
		if err := os.MkdirAll(filepath.Join(dir, c), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files[:perClass] {
			if err := os.WriteFile(filepath.Join(dir, c, filepath.Base(f)), mustRead(t, f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadClassDirs(t *testing.T) {
	p := newTestPreprocessor(t)
	dir := smallTree(t, 5)
	writeFile(t, filepath.Join(dir, "sad", "notes.txt"), []byte("not a face"))
	writeFile(t, filepath.Join(dir, "sad", ".DS_Store"), []byte("hidden"))
	writeFile(t, filepath.Join(dir, "README.md"), []byte("plain files beside the classes are ignored"))
	writeFile(t, filepath.Join(dir, "happy", "more", "nested.jpg"), mustRead(t, "testdata/plain.jpg"))

	d, err := LoadClassDirs(dir, classes, p, LoadOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(d.Counts) != "[5 6 5 5]" || len(d.Crops) != 21 || len(d.Labels) != 21 || len(d.Results) != 21 {
		t.Errorf("counts %v, %d crops", d.Counts, len(d.Crops))
	}
	if len(d.Rejected) != 1 || !strings.Contains(d.Rejected[0].Err.Error(), "notes.txt: not an image") {
		t.Errorf("rejected: %+v", d.Rejected)
	}
	if d.FacesFound+d.Fallbacks != 21 || d.Height != 80 || d.Width != 80 {
		t.Errorf("faces %d fallbacks %d size %dx%d", d.FacesFound, d.Fallbacks, d.Width, d.Height)
	}
	for i := 1; i < len(d.Files); i++ { // classes in order, files sorted within
		if d.Labels[i] < d.Labels[i-1] || d.Labels[i] == d.Labels[i-1] && d.Files[i] < d.Files[i-1] {
			t.Errorf("order: %s (%d) after %s (%d)", d.Files[i], d.Labels[i], d.Files[i-1], d.Labels[i-1])
		}
	}

	// The same load with one worker gives the same bytes: the order does not depend on scheduling.
	d1, err := LoadClassDirs(dir, classes, p, LoadOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range d.Crops {
		if d.Files[i] != d1.Files[i] || !bytes.Equal(d.Crops[i], d1.Crops[i]) {
			t.Fatalf("worker count changed item %d", i)
		}
	}
}

func TestLoadClassDirsErrors(t *testing.T) {
	p := newTestPreprocessor(t)
	stray := smallTree(t, 1)
	writeFile(t, filepath.Join(stray, "surprise", "x.jpg"), mustRead(t, "testdata/plain.jpg"))
	missing := smallTree(t, 1)
	os.RemoveAll(filepath.Join(missing, "sad"))
	empty := smallTree(t, 1)
	os.Remove(mustGlob(t, filepath.Join(empty, "sad", "*")))
	unusable := smallTree(t, 1)
	os.Remove(mustGlob(t, filepath.Join(unusable, "sad", "*")))
	writeFile(t, filepath.Join(unusable, "sad", "empty.jpg"), nil)

	for _, c := range []struct{ dir, want string }{
		{stray, `folder "surprise" is not one of the model's classes`},
		{missing, `no folder for class "sad"`},
		{empty, "sad: class folder is empty"},
		{unusable, `none of the files of class "sad" could be used`},
	} {
		_, err := LoadClassDirs(c.dir, classes, p, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
		if c.dir != stray && !errors.Is(err, ErrClassMissing) {
			t.Errorf("error %v does not wrap ErrClassMissing", err)
		}
	}
	d, err := LoadClassDirs(missing, classes, p, LoadOptions{AllowEmptyClasses: true})
	if err != nil || fmt.Sprint(d.Counts) != "[1 1 1 0]" {
		t.Errorf("AllowEmptyClasses: %v %v", err, d)
	}
}

func mustGlob(t *testing.T, pattern string) string {
	m, _ := filepath.Glob(pattern)
	if len(m) == 0 {
		t.Fatalf("nothing matches %s", pattern)
	}
	return m[0]
}

func TestCache(t *testing.T) {
	p := newTestPreprocessor(t)
	dir := smallTree(t, 4)
	cache := t.TempDir()
	o := LoadOptions{CacheDir: cache}
	cold, err := LoadClassDirs(dir, classes, p, o)
	if err != nil {
		t.Fatal(err)
	}
	if cold.CacheHits != 0 || cold.CacheErr != nil {
		t.Fatalf("cold run: %d hits, %v", cold.CacheHits, cold.CacheErr)
	}
	warm, err := LoadClassDirs(dir, classes, p, o)
	if err != nil {
		t.Fatal(err)
	}
	if warm.CacheHits != len(warm.Crops) {
		t.Errorf("warm run: %d hits of %d", warm.CacheHits, len(warm.Crops))
	}
	for i := range cold.Results {
		c, w := cold.Results[i], warm.Results[i]
		if !bytes.Equal(c.Crop, w.Crop) || c.Outcome != w.Outcome || fmt.Sprint(c.Face) != fmt.Sprint(w.Face) || c.File != w.File {
			t.Errorf("%s: cached result differs: %+v vs %+v", c.File, c.Face, w.Face)
		}
	}

	// Corrupt entries are ignored and rewritten; so is a corrupt pack.
	packs, _ := filepath.Glob(filepath.Join(cache, packFilePattern))
	if len(packs) != 1 {
		t.Fatalf("%d packs after one run of %d crops, want 1", len(packs), len(cold.Crops))
	}
	b := mustRead(t, packs[0])
	if n := int(binary.LittleEndian.Uint32(b[8:])); n != len(cold.Crops) {
		t.Fatalf("pack indexes %d entries for %d crops", n, len(cold.Crops))
	}
	entryOffset := func(i int) int {
		return int(binary.LittleEndian.Uint64(b[packHeadSize+i*packRecordSize+32:]))
	}
	b[entryOffset(0)+entryHeadSize+40] ^= 0xFF // a crop byte
	b[entryOffset(1)] = 'X'                    // the magic
	writeFile(t, packs[0], b)
	writeFile(t, filepath.Join(cache, "pack-garbage.emc"), []byte("EMCP\x01\x00\x00\x00\xff\xff\xff\xff"))
	writeFile(t, filepath.Join(cache, ".tmp-123"), b[:100]) // a run killed mid-write
	again, err := LoadClassDirs(dir, classes, p, o)
	if err != nil {
		t.Fatal(err)
	}
	if again.CacheHits != len(again.Crops)-2 || again.CacheErr != nil {
		t.Errorf("after corrupting 2 entries: %d hits of %d (%v)", again.CacheHits, len(again.Crops), again.CacheErr)
	}
	for i := range cold.Crops {
		if !bytes.Equal(cold.Crops[i], again.Crops[i]) {
			t.Errorf("%s: crop differs after a corrupt entry", cold.Files[i])
		}
	}
	if final, _ := LoadClassDirs(dir, classes, p, o); final.CacheHits != len(final.Crops) {
		t.Errorf("corrupt entries not rewritten: %d hits of %d", final.CacheHits, len(final.Crops))
	}

	// Other parameters, other keys.
	opts := p.Options()
	opts.Height, opts.Width = 64, 64
	p64, _ := New(opts)
	if d, _ := LoadClassDirs(dir, classes, p64, o); d.CacheHits != 0 || len(d.Crops[0]) != 64*64*3 {
		t.Errorf("a 64-pixel run hit %d entries of the 80-pixel run", d.CacheHits)
	}
	opts.Height, opts.Width = 64, 96
	pWide, _ := New(opts)
	if d, _ := LoadClassDirs(dir, classes, pWide, o); d.CacheHits != 0 || len(d.Crops[0]) != 64*96*3 {
		t.Errorf("a 96x64 run hit %d entries of other sizes", d.CacheHits)
	}
}

func TestConcurrentLoadsShareACache(t *testing.T) {
	p := newTestPreprocessor(t)
	dir := smallTree(t, 6)
	cache := t.TempDir()
	want, err := LoadClassDirs(dir, classes, p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]*Dataset, 4)
	errs := make([]error, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = LoadClassDirs(dir, classes, p, LoadOptions{CacheDir: cache, Workers: 2})
		}()
	}
	wg.Wait()
	for i, d := range got {
		if errs[i] != nil || d.CacheErr != nil {
			t.Fatalf("run %d: %v %v", i, errs[i], d.CacheErr)
		}
		for k := range want.Crops {
			if !bytes.Equal(want.Crops[k], d.Crops[k]) {
				t.Fatalf("run %d: %s differs", i, d.Files[k])
			}
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(cache, ".tmp-*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestNormalizeAndBatch(t *testing.T) {
	crop := []uint8{0, 128, 255, 10, 20, 30}
	out := make([]float32, len(crop))
	rgb := func(n savedmodel.Normalization) Input { return Input{Height: 1, Width: 2, Channels: 3, Norm: n} }
	rgb(savedmodel.Rescale).Normalize(crop, out)
	for i, v := range crop {
		if want := float32(v) / 255; math.Abs(float64(out[i]-want)) > 1e-6 {
			t.Errorf("rescale[%d] = %v, want %v", i, out[i], want)
		}
	}
	caffe := savedmodel.Normalization{Mode: "caffe", BGR: true, Scale: [3]float32{1, 1, 1}, Offset: [3]float32{-103.939, -116.779, -123.68}}
	rgb(caffe).Normalize(crop, out)
	if !near(out[0], 255-103.939) || !near(out[1], 128-116.779) || !near(out[2], 0-123.68) {
		t.Errorf("caffe (BGR) = %v", out[:3])
	}
	// One channel: Pillow's convert("L") luma, then the first channel's scale and offset
	// ([-1, 1] here). (0,128,255): 0.587*128 + 0.114*255 = 104.206 -> 104.
	gray := Input{Height: 1, Width: 2, Channels: 1, Norm: savedmodel.Normalization{Scale: [3]float32{2.0 / 255, 9, 9}, Offset: [3]float32{-1, 9, 9}}}
	g := make([]float32, 2)
	gray.Normalize(crop, g)
	if want := 104*2.0/255 - 1; !near(g[0], want) {
		t.Errorf("gray[0] = %v, want %v", g[0], want)
	}
	if want := 18*2.0/255 - 1; !near(g[1], want) { // 0.299*10 + 0.587*20 + 0.114*30 = 18.15
		t.Errorf("gray[1] = %v, want %v", g[1], want)
	}

	d := &Dataset{Height: 2, Width: 2, Crops: [][]uint8{
		{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		{255, 255, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0},
	}}
	x := make([]float32, 2*12)
	d.Batch([]int{1, 0}, Input{Height: 2, Width: 2, Channels: 3, Norm: savedmodel.Rescale}, nil, nil, x)
	if !near(x[0], 1) || !near(x[3], 0) || !near(x[12], 1.0/255) || !near(x[23], 12.0/255) {
		t.Errorf("batch = %v", x)
	}
	x1 := make([]float32, 2*4)
	d.Batch([]int{1, 0}, Input{Height: 2, Width: 2, Channels: 1, Norm: savedmodel.Rescale}, nil, nil, x1)
	if !near(x1[0], 1) || !near(x1[1], 0) || len(x1) != 8 {
		t.Errorf("gray batch = %v", x1)
	}
}

func near(a float32, b float64) bool { return math.Abs(float64(a)-b) < 1e-5 }

func TestAugmentReproducible(t *testing.T) {
	p := newTestPreprocessor(t)
	crop := p.File("testdata/plain.jpg").Crop
	aug := NewAugmenter(DefaultAugment(), 80, 80)
	run := func(seed uint64) []uint8 {
		out := make([]uint8, len(crop))
		aug.Apply(rand.New(rand.NewPCG(seed, 1)), crop, out)
		return out
	}
	a, b, c := run(1), run(1), run(2)
	if !bytes.Equal(a, b) {
		t.Error("same seed, different output")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds, same output")
	}
	if bytes.Equal(a, crop) {
		t.Error("augmentation changed nothing")
	}
	// With all ranges zero the crop is untouched: the sampling itself is exact.
	still := make([]uint8, len(crop))
	NewAugmenter(Augment{}, 80, 80).Apply(rand.New(rand.NewPCG(3, 3)), crop, still)
	if !bytes.Equal(still, crop) {
		t.Error("identity augmentation altered the crop")
	}
	// A certain flip mirrors exactly.
	flipped := make([]uint8, len(crop))
	NewAugmenter(Augment{FlipProb: 1}, 80, 80).Apply(rand.New(rand.NewPCG(3, 3)), crop, flipped)
	for y := 0; y < 80; y++ {
		for x := 0; x < 80; x++ {
			if !bytes.Equal(flipped[3*(80*y+x):][:3], crop[3*(80*y+79-x):][:3]) {
				t.Fatalf("flip wrong at (%d,%d)", x, y)
			}
		}
	}
	// Batch with augmentation draws from the rng the same way.
	d := &Dataset{Height: 80, Width: 80, Crops: [][]uint8{crop}}
	x1, x2 := make([]float32, len(crop)), make([]float32, len(crop))
	in := Input{Height: 80, Width: 80, Channels: 3, Norm: savedmodel.Rescale}
	d.Batch([]int{0}, in, aug, rand.New(rand.NewPCG(1, 1)), x1)
	in.Normalize(a, x2)
	for i := range x1 {
		if x1[i] != x2[i] {
			t.Fatal("Batch with augmentation differs from Apply then Normalize")
		}
	}
}

// npyArray is one parsed .npy member.
type npyArray struct {
	descr string
	shape string
	data  []byte
}

var npyDict = regexp.MustCompile(`^\{'descr': '([^']+)', 'fortran_order': False, 'shape': \(([^)]*)\), \}\s*\n$`)

func readNPZ(t *testing.T, path string) map[string]npyArray {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string]npyArray{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if string(b[:8]) != "\x93NUMPY\x01\x00" {
			t.Fatalf("%s: bad magic %q", f.Name, b[:8])
		}
		hl := int(binary.LittleEndian.Uint16(b[8:]))
		if (10+hl)%64 != 0 {
			t.Errorf("%s: data not 64-byte aligned", f.Name)
		}
		m := npyDict.FindStringSubmatch(string(b[10 : 10+hl]))
		if m == nil {
			t.Fatalf("%s: header %q", f.Name, b[10:10+hl])
		}
		out[strings.TrimSuffix(f.Name, ".npy")] = npyArray{descr: m[1], shape: m[2], data: b[10+hl:]}
	}
	return out
}

func TestWriteNPZ(t *testing.T) {
	p := newTestPreprocessor(t)
	dir := smallTree(t, 3)
	writeFile(t, filepath.Join(dir, "happy", "ünïcode-naïve.jpg"), mustRead(t, "testdata/plain.jpg"))
	d, err := LoadClassDirs(dir, classes, p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := len(d.Crops)
	path := filepath.Join(t.TempDir(), "data.npz")
	in := InputOf(savedmodel.Default())
	if err := WriteNPZ(path, d, in); err != nil {
		t.Fatal(err)
	}
	a := readNPZ(t, path)
	maxLen, outcomeLen := 0, 0
	for i, f := range d.Files {
		maxLen = max(maxLen, len([]rune(f)))
		outcomeLen = max(outcomeLen, len(d.Results[i].Outcome))
	}
	for name, want := range map[string]string{
		"x":          fmt.Sprintf("<f4 (%d, 80, 80, 3)", n),
		"y":          fmt.Sprintf("<i4 (%d,)", n),
		"files":      fmt.Sprintf("<U%d (%d,)", maxLen, n),
		"outcome":    fmt.Sprintf("<U%d (%d,)", outcomeLen, n),
		"face_box":   fmt.Sprintf("<i4 (%d, 4)", n),
		"face_score": fmt.Sprintf("<f4 (%d,)", n),
	} {
		if got := a[name].descr + " (" + a[name].shape + ")"; got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	// x is exactly what Batch gives without augmentation.
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	x := make([]float32, n*80*80*3)
	d.Batch(all, in, nil, nil, x)
	for i, v := range x {
		if math.Float32frombits(binary.LittleEndian.Uint32(a["x"].data[4*i:])) != v {
			t.Fatalf("x[%d] differs from Batch", i)
		}
	}
	if len(a["files"].data) != 4*maxLen*n {
		t.Errorf("files: %d bytes", len(a["files"].data))
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	python := filepath.Join("..", ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Logf("no %s: numpy check skipped (the Go parse above still ran)", python)
		return
	}
	script := `
import sys, numpy as np
d = np.load(sys.argv[1], allow_pickle=False)
x, y, f, o, b, s = d["x"], d["y"], d["files"], d["outcome"], d["face_box"], d["face_score"]
n = int(sys.argv[2])
assert x.shape == (n, 80, 80, 3) and x.dtype == np.float32, x.shape
assert y.dtype == np.int32 and y.tolist() == [int(v) for v in sys.argv[3].split(",")], y
assert f.dtype.kind == "U" and f.tolist() == sys.argv[4].split("\n"), f
assert set(o.tolist()) <= {"face", "fallback"}, o
assert b.shape == (n, 4) and b.dtype == np.int32 and s.dtype == np.float32
assert ((o == "face") == (b[:, 2] > 0)).all() and (b[o == "fallback"] == -1).all()
assert 0 <= x.min() and x.max() <= 1 and x.std() > 0.05
print("ok")
`
	labels := make([]string, n)
	for i, l := range d.Labels {
		labels[i] = fmt.Sprint(l)
	}
	out, err := exec.Command(python, "-c", script, path, fmt.Sprint(n), strings.Join(labels, ","), strings.Join(d.Files, "\n")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("numpy could not load the archive: %v\n%s", err, out)
	}
}

func TestContactSheets(t *testing.T) {
	p := newTestPreprocessor(t)
	d, err := LoadClassDirs(smallTree(t, 3), classes, p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "sheets")
	if err := WriteContactSheets(dir, d); err != nil {
		t.Fatal(err)
	}
	for _, c := range classes {
		f, err := os.Open(filepath.Join(dir, c+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != 3*84+4 || b.Dy() != 84+4 {
			t.Errorf("%s sheet is %v", c, b)
		}
	}
}

func TestProgressCountsEveryFile(t *testing.T) {
	dir := smallTree(t, 2)
	var mu sync.Mutex
	var calls, last, total int
	o := LoadOptions{Workers: 3, Progress: func(done, n int) {
		mu.Lock()
		defer mu.Unlock()
		calls, last, total = calls+1, max(last, done), n
	}}
	d, err := LoadClassDirs(dir, classes, newTestPreprocessor(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.Crops) + len(d.Rejected); calls != n || last != n || total != n {
		t.Errorf("progress: %d calls, last %d of %d, for %d files", calls, last, total, n)
	}
}

func TestInconsistentDatasetRefused(t *testing.T) {
	d := &Dataset{Height: 2, Width: 2, Crops: [][]uint8{make([]uint8, 12)}, Labels: []int32{0}, Files: []string{"a"}}
	if err := WriteNPZ(filepath.Join(t.TempDir(), "x.npz"), d, Input{Height: 2, Width: 2, Channels: 3, Norm: savedmodel.Rescale}); err == nil || !strings.Contains(err.Error(), "inconsistent dataset") {
		t.Errorf("missing results: %v", err)
	}
}

// TestCachePacksInBatches checks that a long run writes its entries as it goes (an
// interrupted run keeps all but the last batch) and that a reopened cache finds them all.
func TestCachePacksInBatches(t *testing.T) {
	dir := t.TempDir()
	const size = 12
	c := openCache(dir, size)
	n := 2*packEntries + 10
	for i := range n {
		r := Result{Outcome: OutcomeFallback, Crop: bytes.Repeat([]byte{byte(i)}, size)}
		if i%2 == 0 {
			r.Outcome, r.Face = OutcomeFace, &Box{X: -i, Y: i, Width: 3, Height: 4, Score: float32(i) / 2}
		}
		c.put(cacheKey{byte(i), byte(i >> 8)}, r)
	}
	if packs, _ := filepath.Glob(filepath.Join(dir, packFilePattern)); len(packs) != 2 {
		t.Errorf("%d packs written before the run ended, want 2", len(packs))
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	c = openCache(dir, size)
	defer c.close()
	if _, ok := c.get(cacheKey{0}); !ok || len(c.open) != 1 {
		t.Errorf("one hit opened %d of %d packs, want 1: packs without hits stay closed", len(c.open), len(c.packs))
	}
	for i := range n {
		e, ok := c.get(cacheKey{byte(i), byte(i >> 8)})
		if !ok || e.crop[0] != byte(i) || (i%2 == 0) != (e.outcome == OutcomeFace) ||
			(e.face != nil && (e.face.X != -i || e.face.Score != float32(i)/2)) {
			t.Fatalf("entry %d: %v %+v", i, ok, e)
		}
	}
	if _, ok := openCache(dir, size+1).get(cacheKey{1}); ok {
		t.Error("an entry of another crop size was returned")
	}
}

func TestPersonOf(t *testing.T) {
	for in, want := range map[string]string{
		"train/sad/Avinash_10.jpg": "Avinash", "Al_Gore_0002.jpg": "Al_Gore", "x/Bo.png": "Bo",
		"Mary_Ann_Smith_v2.jpg": "Mary_Ann_Smith_v2", "_0001.jpg": "_0001", "IMG_1234.JPG": "IMG",
	} {
		if got := PersonOf(in); got != want {
			t.Errorf("PersonOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCropBoxKeepsTheModelsAspect: a non-square model gets a crop of its own aspect ratio
// around the face (the face on the shorter side), never larger than the image; a square model
// gets exactly the square the code always cut.
func TestCropBoxKeepsTheModelsAspect(t *testing.T) {
	face := &Box{X: 300, Y: 200, Width: 100, Height: 100}
	for _, tc := range []struct {
		outW, outH int
		w, h       int
		want       image.Rectangle
	}{
		{80, 80, 800, 600, image.Rect(290, 190, 410, 310)}, // 100 * 1.2 square, centred
		{96, 64, 800, 600, image.Rect(260, 190, 440, 310)}, // 120 high, 180 wide
		{64, 96, 800, 600, image.Rect(290, 160, 410, 340)}, // 120 wide, 180 high
		{96, 64, 150, 150, image.Rect(0, 50, 150, 150)},    // too big: the largest 3:2 box
		{64, 96, 120, 900, image.Rect(0, 160, 120, 340)},   // tall image, tall model
	} {
		got := cropBox(face, 0.1, tc.w, tc.h, tc.outW, tc.outH)
		if got != tc.want {
			t.Errorf("%dx%d model in a %dx%d image: %v, want %v", tc.outW, tc.outH, tc.w, tc.h, got, tc.want)
		}
		if !got.In(image.Rect(0, 0, tc.w, tc.h)) {
			t.Errorf("%v leaves the %dx%d image", got, tc.w, tc.h)
		}
	}
	if got := cropBox(nil, 0.1, 800, 600, 96, 64); got != image.Rect(0, 34, 800, 567) {
		t.Errorf("no face, 3:2 crop of 800x600: %v", got)
	}
}

// TestNonSquareCrops: a 96x64 preprocessor yields 96x64 RGB crops that Batch turns into
// 96*64 gray values for a one-channel model.
func TestNonSquareCrops(t *testing.T) {
	p, err := New(Options{Height: 64, Width: 96, Face: DefaultFaceOptions()})
	if err != nil {
		t.Fatal(err)
	}
	r := p.File("testdata/plain.jpg")
	if r.Err != nil || len(r.Crop) != 96*64*3 {
		t.Fatalf("crop of %d bytes (%v)", len(r.Crop), r.Err)
	}
	d := &Dataset{Height: 64, Width: 96, Crops: [][]uint8{r.Crop}}
	x := make([]float32, 96*64)
	d.Batch([]int{0}, Input{Height: 64, Width: 96, Channels: 1, Norm: savedmodel.Rescale}, nil, nil, x)
	for i, v := range x {
		c := r.Crop[3*i : 3*i+3]
		if want := float64((lumaRGB(c[0], c[1], c[2])+1<<15)>>16) / 255; !near(v, want) {
			t.Fatalf("value %d = %v, want %v", i, v, want)
		}
	}
}

func BenchmarkAugment(b *testing.B) {
	p := newTestPreprocessor(b)
	crop := p.File("testdata/plain.jpg").Crop
	aug := NewAugmenter(DefaultAugment(), 80, 80)
	out := make([]uint8, len(crop))
	rng := rand.New(rand.NewPCG(1, 1))
	b.ResetTimer()
	for range b.N {
		aug.Apply(rng, crop, out)
	}
}
