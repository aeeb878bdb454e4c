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
	// Height and Width are the crop's size in pixels, the model's input size. The crop keeps
	// that aspect ratio around the face.
	Height, Width int
	MaxPixels     int64 // larger declared images are refused unread (decompression bombs); <= 0 = DefaultMaxPixels
	Face          FaceOptions
	// Crop is savedmodel.CropFace ("" too: around the detected face, else the centre),
	// CropCenter (the largest centred box of the input's aspect ratio, no detection: a model
	// of other things than faces) or CropNone (the whole image resized to the input, its
	// aspect ratio not kept).
	Crop string
}

// OptionsFor returns the default options for a model.
func OptionsFor(meta savedmodel.Metadata) Options {
	in := InputOf(meta)
	return Options{Height: in.Height, Width: in.Width, MaxPixels: DefaultMaxPixels, Face: DefaultFaceOptions(), Crop: meta.Crop}
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
	OutcomeCenter   Outcome = "center"   // Options.Crop center: centre crop, no detection
	OutcomeWhole    Outcome = "whole"    // Options.Crop none: the whole image resized
	OutcomeRejected Outcome = "rejected" // not decodable or refused: no crop
)

// Result is the outcome of preprocessing one image.
type Result struct {
	File    string
	Crop    []uint8 // Height*Width*3 RGB, row-major; nil if rejected
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
	if opts.Height < 8 || opts.Height > 4096 || opts.Width < 8 || opts.Width > 4096 {
		return nil, fmt.Errorf("preprocess: crop size %dx%d out of range [8,4096]", opts.Width, opts.Height)
	}
	if opts.MaxPixels <= 0 {
		opts.MaxPixels = DefaultMaxPixels
	}
	if err := opts.Face.validate(); err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	if err := savedmodel.CheckCrop(opts.Crop); err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	if opts.Crop == savedmodel.CropFace {
		opts.Crop = "" // one cache key for the default, as before the option
	}
	d, err := newDetector(opts.Face)
	if err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	size := fmt.Sprint(opts.Width) // square crops keep the key they had before other sizes existed
	if opts.Height != opts.Width {
		size = fmt.Sprintf("%dx%d", opts.Width, opts.Height)
	}
	return &Preprocessor{
		opts:     opts,
		detector: d,
		cacheTag: fmt.Sprintf("v%d size=%s face=%+v", codeVersion, size, opts.Face) + cropTag(opts.Crop),
	}, nil
}

// cropTag is the crop mode's part of the cache key ("" for the default, so crops cached before
// the option keep their keys).
func cropTag(crop string) string {
	if crop == "" {
		return ""
	}
	return " crop=" + crop
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
	switch p.opts.Crop {
	case savedmodel.CropCenter:
		box := cropBox(nil, 0, img.w, img.h, p.opts.Width, p.opts.Height)
		return Result{File: name, Outcome: OutcomeCenter, Crop: cropResize(img, box, p.opts.Width, p.opts.Height)}
	case savedmodel.CropNone:
		return Result{File: name, Outcome: OutcomeWhole, Crop: cropResize(img, image.Rect(0, 0, img.w, img.h), p.opts.Width, p.opts.Height)}
	}
	face, err := p.detector.safeDetect(img)
	if err != nil {
		return rejected(name, fmt.Errorf("%s: %w", name, err))
	}
	res := Result{File: name, Outcome: OutcomeFallback}
	if face != nil {
		res.Outcome, res.Face = OutcomeFace, face
	}
	box := cropBox(face, p.opts.Face.Margin, img.w, img.h, p.opts.Width, p.opts.Height)
	res.Crop = cropResize(img, box, p.opts.Width, p.opts.Height)
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

// cropBox is the cut from a w x h image with the crop's aspect ratio (outW:outH): the face
// plus margin on each side, or the largest centred box when there is no face. The face and
// its margin span the box's shorter side. The box is never larger than the image, so the crop
// holds only real pixels: a face filling the frame keeps the whole short side, which is how
// faces4's training images are framed. For a square crop this is the square around the face.
func cropBox(face *Box, margin float64, w, h, outW, outH int) image.Rectangle {
	// The largest box of the output's aspect ratio inside the image.
	fitW, fitH := w, h
	if w*outH > h*outW {
		fitW = max(1, min(w, int(math.Round(float64(h)*float64(outW)/float64(outH)))))
	} else {
		fitH = max(1, min(h, int(math.Round(float64(w)*float64(outH)/float64(outW)))))
	}
	bw, bh := fitW, fitH
	cx, cy := float64(w)/2, float64(h)/2
	if face != nil {
		short := max(1, int(math.Round(float64(face.Width)*(1+2*margin))))
		if outW >= outH {
			bh, bw = short, max(1, int(math.Round(float64(short)*float64(outW)/float64(outH))))
		} else {
			bw, bh = short, max(1, int(math.Round(float64(short)*float64(outH)/float64(outW))))
		}
		if bw > fitW || bh > fitH {
			bw, bh = fitW, fitH
		}
		cx = float64(face.X) + float64(face.Width)/2
		cy = float64(face.Y) + float64(face.Height)/2
	}
	x0 := min(max(int(math.Round(cx-float64(bw)/2)), 0), w-bw)
	y0 := min(max(int(math.Round(cy-float64(bh)/2)), 0), h-bh)
	return image.Rect(x0, y0, x0+bw, y0+bh)
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
