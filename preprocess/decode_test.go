package preprocess

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// The corpus (testdata/, from ../../shared/contract/corpus) re-encodes faces4 valid/angry
// images; each must decode to its source's pixels within the loss of its format.
var corpusSources = []struct {
	file, source string
	maxMSE       float64
}{
	{"plain.jpg", "Alvaro_Noboa_0002.jpg", 2},
	{"progressive.jpg", "Billy_Donovan_0001.jpg", 2},
	{"cmyk.jpg", "Bill_Graham_0005.jpg", 2},
	{"exif-orientation-6.jpg", "Gala_Leon_Garcia_0001.jpg", 2}, // stored turned: must come out upright
	{"bmp-format.bmp", "Fernando_Gonzalez_0001.jpg", 1},
	{"gif-format.gif", "Ernie_Harwell_0001.jpg", 1},
	{"palette.png", "Eric_Idle_0001.jpg", 1},
	{"sixteen-bit-gray.png", "Carlos_Arroyo_0001.jpg", 1},
	{"tiff-format.tiff", "Filippo_Inzaghi_0001.jpg", 1},
	{"webp-named-as.jpg", "Filippo_Inzaghi_0002.jpg", 100}, // lossy WebP: RMSE 7
}

func decodeFile(t *testing.T, path string) *image.RGBA {
	t.Helper()
	img, err := decodeRGBA(path, mustRead(t, path), DefaultMaxPixels)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func meanSquaredError(a, b *image.RGBA) float64 {
	var sum float64
	for i := range a.Pix {
		d := float64(a.Pix[i]) - float64(b.Pix[i])
		sum += d * d
	}
	return sum / float64(len(a.Pix))
}

func TestCorpusDecodesToSourcePixels(t *testing.T) {
	for _, c := range corpusSources {
		t.Run(c.file, func(t *testing.T) {
			got := decodeFile(t, filepath.Join("testdata", c.file))
			want := decodeFile(t, filepath.Join(faces4Dir, "valid", "angry", c.source))
			if got.Rect != want.Rect {
				t.Fatalf("size %v, source %v", got.Rect, want.Rect)
			}
			if mse := meanSquaredError(got, want); mse > c.maxMSE {
				t.Errorf("mean squared error %.2f against %s, want <= %g", mse, c.source, c.maxMSE)
			}
		})
	}
}

func TestGrayAlphaCompositedOnWhite(t *testing.T) {
	path := filepath.Join("testdata", "gray-alpha.png")
	raw, err := png.Decode(bytes.NewReader(mustRead(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	got := decodeFile(t, path)
	b := raw.Bounds()
	transparent := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(raw.At(x, y)).(color.NRGBA)
			want := float64(c.R)*float64(c.A)/255 + 255*(1-float64(c.A)/255)
			p := got.Pix[got.PixOffset(x, y):]
			if d := float64(p[0]) - want; d > 1 || d < -1 || p[0] != p[1] || p[1] != p[2] || p[3] != 255 {
				t.Fatalf("pixel (%d,%d) = %v, want gray %.1f on white (value %d alpha %d)", x, y, p[:4], want, c.R, c.A)
			}
			if c.A < 255 {
				transparent++
			}
		}
	}
	if transparent == 0 {
		t.Error("fixture has no transparent pixel: the test proves nothing")
	}
}

func TestCorpusOutcomes(t *testing.T) {
	p := newTestPreprocessor(t)
	var files []string // the corpus files, not the folders beside them (parity/, fuzz/)
	entries, _ := os.ReadDir("testdata")
	for _, e := range entries {
		if !e.IsDir() {
			files = append(files, filepath.Join("testdata", e.Name()))
		}
	}
	if len(files) != 16 {
		t.Fatalf("%d corpus files, want 16", len(files))
	}
	refused := map[string]string{
		"zero-bytes.jpg":       "empty file",
		"text-file.jpg":        "not an image",
		"truncated.jpg":        "truncated jpeg",
		"bomb-30000x30000.png": "30000x30000 = 900 megapixels exceeds the 50 megapixel limit",
	}
	results := LoadFiles(files, p, LoadOptions{}) // a batch goes on past bad files
	decoded := 0
	for _, r := range results {
		base := filepath.Base(r.File)
		if reason, bad := refused[base]; bad {
			if r.Outcome != OutcomeRejected || r.Err == nil || r.Crop != nil {
				t.Errorf("%s: outcome %s, err %v: want rejected", base, r.Outcome, r.Err)
				continue
			}
			msg := r.Err.Error()
			if !strings.Contains(msg, base) || !strings.Contains(msg, reason) || strings.Count(msg, base) != 1 {
				t.Errorf("%s: error %q should name the file once and say %q", base, msg, reason)
			}
			continue
		}
		if r.Err != nil || len(r.Crop) != 80*80*3 {
			t.Errorf("%s: %v (crop %d bytes)", base, r.Err, len(r.Crop))
			continue
		}
		decoded++
	}
	if decoded != 12 {
		t.Errorf("%d corpus files decoded, want 12", decoded)
	}
}

func TestBombRefusedFromHeader(t *testing.T) {
	data := mustRead(t, filepath.Join("testdata", "bomb-30000x30000.png"))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := decodeRGBA("bomb-30000x30000.png", data, DefaultMaxPixels)
	runtime.ReadMemStats(&after)
	want := "bomb-30000x30000.png: 30000x30000 = 900 megapixels exceeds the 50 megapixel limit"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want it to start with %q", err, want)
	}
	// What was allocated, not how long it took, shows the pixels were not decoded: a time
	// bound fails on a busy machine.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("refusing allocated %d MB: the pixels were allocated", grew>>20)
	}
	// A lower limit applies to ordinary images too.
	small, err := New(Options{Height: 80, Width: 80, MaxPixels: 1000, Face: DefaultFaceOptions()})
	if err != nil {
		t.Fatal(err)
	}
	if r := small.File(filepath.Join("testdata", "plain.jpg")); r.Err == nil || !strings.Contains(r.Err.Error(), "350x350 = 0.122 megapixels exceeds the 0.001 megapixel limit") {
		t.Errorf("350x350 under a 1000-pixel limit: %v", r.Err)
	}
}

func TestMissingFileNamed(t *testing.T) {
	r := newTestPreprocessor(t).File("no/such/file.jpg")
	if r.Outcome != OutcomeRejected || r.Err == nil || !strings.HasPrefix(r.Err.Error(), "no/such/file.jpg: ") {
		t.Errorf("missing file: %+v", r)
	}
}

// quadrants is an upright 40x24 test card: four distinct colours, so any flip or turn shows.
func quadrants() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 40, 24))
	colours := []color.RGBA{{250, 0, 0, 255}, {0, 250, 0, 255}, {0, 0, 250, 255}, {250, 250, 0, 255}}
	for y := 0; y < 24; y++ {
		for x := 0; x < 40; x++ {
			img.SetRGBA(x, y, colours[2*(y/12)+x/20])
		}
	}
	return img
}

// Elementary moves, to build each stored image independently of orient's formulas.
func turnClockwise(src *image.RGBA) *image.RGBA {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	dst := image.NewRGBA(image.Rect(0, 0, h, w))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dst.SetRGBA(h-1-y, x, src.RGBAAt(x, y))
		}
	}
	return dst
}

func mirror(src *image.RGBA) *image.RGBA {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	dst := image.NewRGBA(src.Rect)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dst.SetRGBA(w-1-x, y, src.RGBAAt(x, y))
		}
	}
	return dst
}

func turns(img *image.RGBA, n int) *image.RGBA {
	for i := 0; i < n; i++ {
		img = turnClockwise(img)
	}
	return img
}

// storedFor returns what a camera stores for an upright picture under each EXIF
// orientation: the inverse of the transform a viewer applies.
func storedFor(upright *image.RGBA, orientation int) *image.RGBA {
	switch orientation {
	case 2:
		return mirror(upright)
	case 3:
		return turns(upright, 2)
	case 4:
		return mirror(turns(upright, 2))
	case 5: // transpose is its own inverse
		return mirror(turns(upright, 1))
	case 6: // viewer turns clockwise, so it was stored turned counter-clockwise
		return turns(upright, 3)
	case 7: // transverse, its own inverse
		return turns(mirror(turns(upright, 1)), 2)
	case 8:
		return turns(upright, 1)
	}
	return upright
}

// exifTIFF is a minimal big-endian TIFF block holding only an Orientation tag.
func exifTIFF(orientation int) []byte {
	b := []byte("MM\x00\x2a\x00\x00\x00\x08") // header, IFD0 at 8
	b = binary.BigEndian.AppendUint16(b, 1)   // one entry
	b = binary.BigEndian.AppendUint16(b, orientationTag)
	b = binary.BigEndian.AppendUint16(b, 3) // SHORT
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(orientation))
	b = append(b, 0, 0)                        // value padding
	return binary.BigEndian.AppendUint32(b, 0) // no next IFD
}

// withPNGExif inserts an eXIf chunk after IHDR.
func withPNGExif(t *testing.T, img image.Image, orientation int) []byte {
	p := encodePNG(t, img)
	payload := exifTIFF(orientation)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	chunk = append(chunk, "eXIf"...)
	chunk = append(chunk, payload...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	ihdrEnd := 8 + 12 + 13
	return append(append(append([]byte{}, p[:ihdrEnd]...), chunk...), p[ihdrEnd:]...)
}

// withJPEGExif inserts an APP1 Exif segment after SOI.
func withJPEGExif(t *testing.T, img image.Image, orientation int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	payload := append([]byte("Exif\x00\x00"), exifTIFF(orientation)...)
	seg := []byte{0xFF, 0xE1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(payload)+2))
	seg = append(seg, payload...)
	j := buf.Bytes()
	return append(append(append([]byte{}, j[:2]...), seg...), j[2:]...)
}

func TestEXIFOrientationsComeOutUpright(t *testing.T) {
	upright := quadrants()
	for o := 1; o <= 8; o++ {
		stored := storedFor(upright, o)
		for _, enc := range []struct {
			name   string
			data   []byte
			maxMSE float64
		}{
			{"png", withPNGExif(t, stored, o), 0},
			// 4:2:0 chroma interpolated as libjpeg-turbo does (Pillow gives the same pixels)
			// bleeds across the quadrants' colour edges: MSE ~245; a wrong turn costs ~10^4.
			{"jpeg", withJPEGExif(t, stored, o), 400},
		} {
			got, err := decodeRGBA(enc.name, enc.data, DefaultMaxPixels)
			if err != nil {
				t.Fatalf("orientation %d %s: %v", o, enc.name, err)
			}
			if got.Rect != upright.Rect {
				t.Errorf("orientation %d %s: size %v, want %v", o, enc.name, got.Rect, upright.Rect)
				continue
			}
			if mse := meanSquaredError(got, upright); mse > enc.maxMSE {
				t.Errorf("orientation %d %s: not upright (mean squared error %.1f)", o, enc.name, mse)
			}
		}
	}
}

// TestFormatsRoundTrip encodes one known image in every lossless format and expects the
// same pixels back, whatever the file is called.
func TestFormatsRoundTrip(t *testing.T) {
	want := quadrants()
	gray := image.NewGray(want.Rect)
	gray16 := image.NewGray16(want.Rect)
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 7)
		gray16.Pix[2*i], gray16.Pix[2*i+1] = uint8(i*7), 0x80
	}
	wantGray := image.NewRGBA(want.Rect)
	for i, v := range gray.Pix {
		copy(wantGray.Pix[4*i:], []uint8{v, v, v, 255})
	}
	encode := func(f func(*bytes.Buffer) error) []byte {
		var buf bytes.Buffer
		if err := f(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	cases := []struct {
		name string
		data []byte
		want *image.RGBA
	}{
		{"rgb.png", encodePNG(t, want), want},
		{"gray.png", encodePNG(t, gray), wantGray},
		{"gray16.png", encodePNG(t, gray16), wantGray},
		{"image.bmp", encode(func(b *bytes.Buffer) error { return bmp.Encode(b, want) }), want},
		{"image.tiff", encode(func(b *bytes.Buffer) error { return tiff.Encode(b, want, nil) }), want},
		{"image.gif", encode(func(b *bytes.Buffer) error { return gif.Encode(b, paletted(want), nil) }), want},
		{"misnamed.jpg", encodePNG(t, want), want},
	}
	for _, c := range cases {
		got, err := decodeRGBA(c.name, c.data, DefaultMaxPixels)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !bytes.Equal(got.Pix, c.want.Pix) {
			t.Errorf("%s: pixels differ (mean squared error %.2f)", c.name, meanSquaredError(got, c.want))
		}
	}
}

func TestCorruptDataIsAnErrorNotAPanic(t *testing.T) {
	p := newTestPreprocessor(t)
	seeds := [][]byte{mustRead(t, "testdata/bmp-format.bmp"), mustRead(t, "testdata/tiff-format.tiff"),
		mustRead(t, "testdata/webp-named-as.jpg"), mustRead(t, "testdata/gif-format.gif"), mustRead(t, "testdata/plain.jpg")}
	for i, seed := range seeds {
		for k := 0; k < 30; k++ {
			data := append([]byte{}, seed...)
			for j := 0; j < 8; j++ { // flip bytes past the magic number
				pos := 16 + (k*7919+j*104729)%(len(data)-16)
				data[pos] ^= byte(37 * (j + 1))
			}
			if cut := (k * 131) % len(data); k%3 == 0 {
				data = data[:max(cut, 20)]
			}
			r := p.Bytes("fuzzed", data) // must return, whatever it decides
			if r.Err != nil && !strings.HasPrefix(r.Err.Error(), "fuzzed: ") {
				t.Errorf("seed %d: error does not name the file: %v", i, r.Err)
			}
		}
	}
}

func TestReadErrorsDoNotStopABatch(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jpg")
	if err := os.WriteFile(good, mustRead(t, "testdata/plain.jpg"), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := LoadFiles([]string{filepath.Join(dir, "missing.jpg"), good, dir}, newTestPreprocessor(t), LoadOptions{Workers: 2})
	if rs[0].Err == nil || rs[1].Err != nil || rs[2].Err == nil {
		t.Errorf("results: %v / %v / %v", rs[0].Err, rs[1].Err, rs[2].Err)
	}
	if rs[1].File != good {
		t.Errorf("order not kept: %s", rs[1].File)
	}
}

// paletted holds img exactly, with a palette of its own colours (GIF would otherwise
// quantise to a standard palette).
func paletted(img *image.RGBA) *image.Paletted {
	var pal color.Palette
	index := map[color.RGBA]uint8{}
	for i := 0; i < len(img.Pix); i += 4 {
		c := color.RGBA{img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3]}
		if _, ok := index[c]; !ok {
			index[c] = uint8(len(pal))
			pal = append(pal, c)
		}
	}
	out := image.NewPaletted(img.Rect, pal)
	for i := range out.Pix {
		out.Pix[i] = index[color.RGBA{img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3]}]
	}
	return out
}

func TestDecodeForCallers(t *testing.T) {
	p := newTestPreprocessor(t)
	img, err := p.Decode("exif-orientation-6.jpg", mustRead(t, "testdata/exif-orientation-6.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	want := decodeFile(t, filepath.Join(faces4Dir, "valid", "angry", "Gala_Leon_Garcia_0001.jpg"))
	rgba, ok := img.(*image.RGBA)
	if !ok || meanSquaredError(rgba, want) > 2 {
		t.Errorf("Decode did not return the upright RGBA image (%T)", img)
	}
	if img, err := p.Decode("bomb.png", mustRead(t, "testdata/bomb-30000x30000.png")); img != nil || err == nil {
		t.Errorf("bomb: %v, %v", img, err)
	}
	// Face boxes are in Decode's coordinates: the box lies on the image.
	r := p.Bytes("exif-orientation-6.jpg", mustRead(t, "testdata/exif-orientation-6.jpg"))
	if r.Outcome != OutcomeFace || !image.Rect(r.Face.X, r.Face.Y, r.Face.X+r.Face.Width, r.Face.Y+r.Face.Height).Overlaps(img.Bounds()) {
		t.Errorf("face: %+v", r)
	}
}

func TestTextStartingLikeAHeaderIsNotAnImage(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{"BMW 320i service notes, 2019 edition", "notes.bmp: not an image"},
		{"BM\x00\x00\x00\x00", "short.bmp: truncated bmp file"},
	} {
		name := strings.Fields(c.want)[0]
		name = strings.TrimSuffix(name, ":")
		_, err := decodeRaster(name, []byte(c.data), DefaultMaxPixels)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.data, err, c.want)
		}
	}
}
