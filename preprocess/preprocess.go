// Package preprocess turns image files into what the model sees: decoded from any common
// format (sniffed, EXIF-oriented, bomb-checked), cropped to the face found by pigo (or a
// centre square), resized to the model's input, and kept as compact uint8 RGB crops.
// Normalisation to the model's float input happens only when batches are assembled
// (Normalize, Dataset.Batch, WriteNPZ): one code path for training, evaluation,
// prediction and export.
//
// The face cascade is pigo's facefinder, embedded by package assets (assets/facefinder):
// a binary needs no file beside it.
package preprocess

import (
	"fmt"
	"image"
	"math"
	"os"

	"github.com/emotions-dev/emotions/savedmodel"
)

// Options are the preprocessing parameters; everything that changes a crop is part of the
// cache key.
type Options struct {
	InputSize int   // side of the square crop given to the model
	MaxPixels int64 // larger declared images are refused unread (decompression bombs); <= 0 = DefaultMaxPixels
	Face      FaceOptions
}

// OptionsFor returns the default options for a model.
func OptionsFor(meta savedmodel.Metadata) Options {
	return Options{InputSize: meta.InputSize, MaxPixels: DefaultMaxPixels, Face: DefaultFaceOptions()}
}

// Box is a face in the oriented image's pixel coordinates (it may extend past the image
// edge for a face the photo cut); Score is the detector's cluster score.
type Box struct {
	X, Y, Width, Height int
	Score               float32
}

// Outcome records how an image became a crop.
type Outcome string

const (
	OutcomeFace     Outcome = "face"     // cropped around the detected face
	OutcomeFallback Outcome = "fallback" // no face found: centre square crop
	OutcomeRejected Outcome = "rejected" // not decodable or refused: no crop
)

// Result is the outcome of preprocessing one image.
type Result struct {
	File    string
	Crop    []uint8 // InputSize*InputSize*3 RGB, row-major; nil if rejected
	Outcome Outcome
	Face    *Box  // nil unless Outcome == OutcomeFace
	Err     error // non-nil iff rejected; the message names the file
}

// Preprocessor is safe for concurrent use.
type Preprocessor struct {
	opts     Options
	detector *detector
	cacheTag string // the parameters part of cache keys
}

// New checks the options and loads the face detector.
func New(opts Options) (*Preprocessor, error) {
	if opts.InputSize < 8 || opts.InputSize > 4096 {
		return nil, fmt.Errorf("preprocess: input size %d out of range [8,4096]", opts.InputSize)
	}
	if opts.MaxPixels <= 0 {
		opts.MaxPixels = DefaultMaxPixels
	}
	if err := opts.Face.validate(); err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	d, err := newDetector(opts.Face)
	if err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	return &Preprocessor{
		opts:     opts,
		detector: d,
		cacheTag: fmt.Sprintf("v%d size=%d face=%+v", codeVersion, opts.InputSize, opts.Face),
	}, nil
}

// Options returns the options in use (defaults filled in).
func (p *Preprocessor) Options() Options { return p.opts }

// File reads and preprocesses one file; errors are in the Result.
func (p *Preprocessor) File(path string) Result {
	r, _ := p.cachedFile(path, nil)
	return r
}

// Bytes preprocesses an image held in memory; name is used in the Result and messages.
func (p *Preprocessor) Bytes(name string, data []byte) Result {
	img, err := decodeRaster(name, data, p.opts.MaxPixels)
	if err != nil {
		return rejected(name, err)
	}
	face, err := p.detector.safeDetect(img)
	if err != nil {
		return rejected(name, fmt.Errorf("%s: %w", name, err))
	}
	res := Result{File: name, Outcome: OutcomeFallback}
	if face != nil {
		res.Outcome, res.Face = OutcomeFace, face
	}
	res.Crop = cropResize(img, cropSquare(face, p.opts.Face.Margin, img.w, img.h), p.opts.InputSize)
	return res
}

// Decode returns the image upright (EXIF orientation applied), opaque RGB (alpha on
// white, gray expanded), after refusing bombs from the header. Face boxes in Results are
// in this image's coordinates.
func (p *Preprocessor) Decode(name string, data []byte) (image.Image, error) {
	img, err := decodeRGBA(name, data, p.opts.MaxPixels)
	if err != nil {
		return nil, err // nil interface, not a typed nil *image.RGBA
	}
	return img, nil
}

// cropSquare is the square cut from a w x h image: the face plus margin on each side, or
// the centre square when there is no face. It is never larger than the image, so the
// crop holds only real pixels: a face filling the frame keeps the whole short side,
// which is how faces4's training images are framed.
func cropSquare(face *Box, margin float64, w, h int) image.Rectangle {
	side := min(w, h)
	cx, cy := float64(w)/2, float64(h)/2
	if face != nil {
		want := float64(face.Width) * (1 + 2*margin)
		side = min(side, max(1, int(math.Round(want))))
		cx = float64(face.X) + float64(face.Width)/2
		cy = float64(face.Y) + float64(face.Height)/2
	}
	x0 := min(max(int(math.Round(cx-float64(side)/2)), 0), w-side)
	y0 := min(max(int(math.Round(cy-float64(side)/2)), 0), h-side)
	return image.Rect(x0, y0, x0+side, y0+side)
}

func rejected(name string, err error) Result {
	return Result{File: name, Outcome: OutcomeRejected, Err: err}
}

// unwrapPathError drops *fs.PathError's own "open NAME:" prefix: callers name the file once.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
