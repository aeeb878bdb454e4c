package preprocess

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/emotions-dev/emotions/savedmodel"
)

// faces4Dir is the project's embedded copy of the dataset.
const faces4Dir = "../data/faces4"

func faces4Files(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(faces4Dir, "*", "*", "*.jpg"))
	if err != nil || len(files) < 900 {
		t.Fatalf("faces4 not found at %s (%d files, %v): the project keeps its own copy there", faces4Dir, len(files), err)
	}
	sort.Strings(files)
	return files
}

func newTestPreprocessor(t testing.TB) *Preprocessor {
	t.Helper()
	p, err := New(OptionsFor(savedmodel.Default()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// parallel runs f(i) for i in [0,n) on all cores.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

func TestFaceFoundOnFaces4(t *testing.T) {
	p := newTestPreprocessor(t)
	files := faces4Files(t)
	results := make([]Result, len(files))
	start := time.Now()
	parallel(len(files), func(i int) { results[i] = p.File(files[i]) })
	elapsed := time.Since(start)
	found := 0
	var relSide float64
	for i, r := range results {
		if r.Err != nil {
			t.Errorf("%s: %v", files[i], r.Err)
			continue
		}
		if r.Outcome == OutcomeFace {
			found++
			cfg := decodeConfig(t, files[i])
			relSide += float64(r.Face.Width) / float64(min(cfg.Width, cfg.Height))
		} else if testing.Verbose() {
			t.Logf("no face: %s", files[i])
		}
	}
	rate := float64(found) / float64(len(files))
	t.Logf("faces4: face found in %d/%d = %.1f%% (%.0f images/s); mean face side %.2f of the short side",
		found, len(files), 100*rate, float64(len(files))/elapsed.Seconds(), relSide/float64(max(found, 1)))
	if rate < 0.95 {
		t.Errorf("face found in %.1f%% of faces4, want >= 95%%", 100*rate)
	}
}

func decodeConfig(t testing.TB, path string) image.Config {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// pastedFace is a faces4 face pasted into a synthetic 800x600 scene at box.
type pastedFace struct {
	file string
	png  []byte
	box  image.Rectangle
}

// pastedFaces makes n scenes: faces4 faces (100-250 px) on noise or gradient backgrounds.
func pastedFaces(t testing.TB, n int) []pastedFace {
	files := faces4Files(t)
	rng := rand.New(rand.NewPCG(4, 2))
	trials := make([]pastedFace, n)
	for i := range trials {
		file := files[rng.IntN(len(files))]
		side := 100 + rng.IntN(151)
		x, y := rng.IntN(800-side), rng.IntN(600-side)
		trials[i] = pastedFace{file: file, box: image.Rect(x, y, x+side, y+side)}
	}
	parallel(n, func(i int) {
		tr := &trials[i]
		face, err := decodeRaster(tr.file, mustRead(t, tr.file), DefaultMaxPixels)
		if err != nil {
			t.Error(err)
			return
		}
		scene := syntheticScene(800, 600, i%2 == 0, uint64(i))
		small := cropResize(face, squareInside(face.bounds()), tr.box.Dx(), tr.box.Dx())
		for y := 0; y < tr.box.Dy(); y++ {
			for x := 0; x < tr.box.Dx(); x++ {
				q := small[3*(y*tr.box.Dx()+x):]
				scene.SetRGBA(tr.box.Min.X+x, tr.box.Min.Y+y, color.RGBA{q[0], q[1], q[2], 255})
			}
		}
		tr.png = encodePNG(t, scene)
	})
	return trials
}

func encodePNG(t testing.TB, img image.Image) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPastedFaceIoU checks the crop of a face pasted into a larger scene overlaps it.
func TestPastedFaceIoU(t *testing.T) {
	p := newTestPreprocessor(t)
	n := 200
	if testing.Short() {
		n = 60
	}
	trials := pastedFaces(t, n)
	ious := make([]float64, n)
	parallel(n, func(i int) {
		r := p.Bytes(trials[i].file, trials[i].png)
		if r.Outcome == OutcomeFace {
			ious[i] = iou(cropBox(r.Face, p.opts.Face.Margin, 800, 600, 1, 1), trials[i].box)
		}
	})
	pass := 0
	for i, v := range ious {
		if v >= 0.5 {
			pass++
		} else if testing.Verbose() {
			t.Logf("IoU %.2f: %s at %v", v, trials[i].file, trials[i].box)
		}
	}
	rate := float64(pass) / float64(n)
	t.Logf("pasted faces: crop IoU >= 0.5 in %d/%d = %.1f%%", pass, n, 100*rate)
	if rate < 0.95 {
		t.Errorf("crop IoU >= 0.5 in %.1f%% of pasted faces, want >= 95%%", 100*rate)
	}
}

func mustRead(t testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func squareInside(r image.Rectangle) image.Rectangle {
	side := min(r.Dx(), r.Dy())
	x, y := (r.Dx()-side)/2, (r.Dy()-side)/2
	return image.Rect(x, y, x+side, y+side)
}

func iou(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	if in.Empty() {
		return 0
	}
	ai := float64(in.Dx() * in.Dy())
	return ai / (float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - ai)
}

// syntheticScene is a colour gradient or uniform noise background.
func syntheticScene(w, h int, gradient bool, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 7))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var c color.RGBA
			if gradient {
				c = color.RGBA{uint8(255 * x / w), uint8(255 * y / h), uint8(128 + 64*math.Sin(float64(x+y)/90)), 255}
			} else {
				c = color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// TestFaceFreeScenesFallBack checks the detector does not invent faces: scenes of noise
// and gradients, as behind TestPastedFaceIoU's faces, must come out as centre crops.
func TestFaceFreeScenesFallBack(t *testing.T) {
	p := newTestPreprocessor(t)
	n := 40
	found := make([]*Box, n)
	parallel(n, func(i int) {
		scene := syntheticScene(800, 600, i%2 == 0, uint64(1000+i))
		found[i] = p.Bytes("scene.png", encodePNG(t, scene)).Face
	})
	for i, f := range found {
		if f != nil {
			t.Errorf("scene %d: a face found where there is none: %+v", i, *f)
		}
	}
}
