package preprocess

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/emotions-dev/emotions/internal/atomicfs"
)

// WriteNPZ writes the dataset as a NumPy .npz archive (what np.savez writes: a zip of
// .npy files, loadable with allow_pickle=False):
//
//	x          float32 [n,H,W,C]  the model's input: Batch's output without augmentation
//	y          int32   [n]        class index into the model's classes
//	files      <U      [n]        source file paths
//	outcome    <U      [n]        "face" or "fallback"
//	face_box   int32   [n,4]      x, y, width, height in the oriented image; -1 when no face
//	face_score float32 [n]        detector score; 0 when no face
//
// The file appears atomically: written to a temporary file in the same folder, synced,
// then renamed over path, so a reader never sees a partial archive.
func WriteNPZ(path string, d *Dataset, in Input) error {
	if err := d.check(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if in.Height != d.Height || in.Width != d.Width {
		return fmt.Errorf("write %s: the model takes %dx%d images, the dataset holds %dx%d crops", path, in.Width, in.Height, d.Width, d.Height)
	}
	return atomicfs.WriteFileFunc(path, 0o644, func(f io.Writer) error {
		buf := bufio.NewWriterSize(f, 1<<20)
		zw := zip.NewWriter(buf)
		if err := writeNPZArrays(zw, d, in); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		return buf.Flush()
	})
}

func writeNPZArrays(zw *zip.Writer, d *Dataset, in Input) error {
	n := len(d.Crops)
	// x is streamed crop by crop: the whole float tensor may not fit in memory.
	w, err := npyEntry(zw, "x", "<f4", n, in.Height, in.Width, in.Channels)
	if err != nil {
		return err
	}
	row := make([]float32, in.Values())
	raw := make([]byte, 4*len(row))
	for _, c := range d.Crops {
		in.Normalize(c, row)
		for i, v := range row {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		if _, err := w.Write(raw); err != nil {
			return err
		}
	}

	boxes := make([]int32, 0, 4*n)
	scores := make([]float32, 0, n)
	outcomes := make([]string, 0, n)
	for _, r := range d.Results {
		outcomes = append(outcomes, string(r.Outcome))
		if r.Face == nil {
			boxes = append(boxes, -1, -1, -1, -1)
			scores = append(scores, 0)
			continue
		}
		boxes = append(boxes, int32(r.Face.X), int32(r.Face.Y), int32(r.Face.Width), int32(r.Face.Height))
		scores = append(scores, r.Face.Score)
	}
	if err := writeNumeric(zw, "y", "<i4", d.Labels, n); err != nil {
		return err
	}
	if err := writeStrings(zw, "files", d.Files); err != nil {
		return err
	}
	if err := writeStrings(zw, "outcome", outcomes); err != nil {
		return err
	}
	if err := writeNumeric(zw, "face_box", "<i4", boxes, n, 4); err != nil {
		return err
	}
	return writeNumeric(zw, "face_score", "<f4", scores, n)
}

// npyEntry starts NAME.npy in the archive and writes its header.
func npyEntry(zw *zip.Writer, name, descr string, shape ...int) (io.Writer, error) {
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name + ".npy", Method: zip.Store})
	if err != nil {
		return nil, err
	}
	_, err = w.Write(npyHeader(descr, shape))
	return w, err
}

// npyHeader is the .npy format 1.0 header, padded so the data starts 64-byte aligned.
func npyHeader(descr string, shape []int) []byte {
	dims := make([]string, len(shape))
	for i, v := range shape {
		dims[i] = fmt.Sprint(v)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, tuple)
	const prefix = 10 // magic, version, header length
	total := (prefix + len(dict) + 1 + 63) / 64 * 64
	h := make([]byte, 0, total)
	h = append(h, "\x93NUMPY\x01\x00"...)
	h = binary.LittleEndian.AppendUint16(h, uint16(total-prefix))
	h = append(h, dict...)
	for len(h) < total-1 {
		h = append(h, ' ')
	}
	return append(h, '\n')
}

func writeNumeric[T int32 | float32](zw *zip.Writer, name, descr string, data []T, shape ...int) error {
	w, err := npyEntry(zw, name, descr, shape...)
	if err != nil {
		return err
	}
	return binary.Write(w, binary.LittleEndian, data)
}

// writeStrings writes a NumPy unicode array ('<U<max length>', UTF-32 code points,
// zero-padded), which needs no pickle to load, unlike an object array.
func writeStrings(zw *zip.Writer, name string, values []string) error {
	width := 1
	for _, v := range values {
		width = max(width, utf8.RuneCountInString(v))
	}
	w, err := npyEntry(zw, name, fmt.Sprintf("<U%d", width), len(values))
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	cell := make([]byte, 4*width)
	for _, v := range values {
		clear(cell)
		i := 0
		for _, r := range v {
			binary.LittleEndian.PutUint32(cell[4*i:], uint32(r))
			i++
		}
		if _, err := bw.Write(cell); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// check reports a dataset whose parallel slices disagree, before anything is written.
func (d *Dataset) check() error {
	n := len(d.Crops)
	if len(d.Labels) != n || len(d.Files) != n || len(d.Results) != n {
		return fmt.Errorf("inconsistent dataset: %d crops, %d labels, %d files, %d results",
			n, len(d.Labels), len(d.Files), len(d.Results))
	}
	for i, c := range d.Crops {
		if len(c) != d.Height*d.Width*3 {
			return fmt.Errorf("%s: crop of %d bytes, want %dx%dx3", d.Files[i], len(c), d.Height, d.Width)
		}
	}
	return nil
}
