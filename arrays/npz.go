package arrays

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"codeberg.org/sbinet/npyio/npy"
)

// DefaultMaxBytes is the MaxBytes of a zero Limits: 4 GiB, more than most training sets and
// little enough that a hostile archive cannot take a large server's memory.
const DefaultMaxBytes int64 = 4 << 30

// Limits bounds what reading an archive may allocate, because an .npz is untrusted input: its
// headers choose the sizes of the arrays, and a few kilobytes of deflate can claim gigabytes.
type Limits struct {
	// MaxBytes bounds the memory of all of an archive's arrays together: their elements, and
	// for a string array 16 bytes a string plus its size on disk. 0 means DefaultMaxBytes.
	// Reading briefly takes up to about twice that: a Fortran-order array is reordered into a
	// copy, and string arrays are decoded from a buffer.
	MaxBytes int64
}

// The largest .npy header ReadNPZ accepts. NumPy writes a few hundred bytes for the dtypes
// ReadNPZ supports (np.load itself refuses over 10000 by default).
const maxHeaderBytes = 1 << 16

// deflateRatio is the most that deflate can expand: 258 bytes from each 2 bits of a long run,
// about 1032:1. A deflated entry claiming more is a zip bomb or corrupt.
const deflateRatio = 1032

// ReadNPZ reads the arrays of a NumPy .npz archive (np.savez or np.savez_compressed), keyed as
// np.load keys them (each entry's name without ".npy"): how data prepared in Python reaches a
// Go program. The archive is untrusted: every size is checked against the archive and limits
// before anything is allocated, and an error names the file, the array and the reason.
//
// The dtypes are bool, int8-int64, uint8, uint16, float16, float32, float64 and strings
// ('<U' unicode and '|S' bytes, both String); little- and big-endian, C or Fortran order
// (reordered to row-major). uint32, uint64, complex, object (pickled), structured and
// datetime arrays are errors, as is an entry that is not a .npy array or a name that appears
// twice.
func ReadNPZ(path string, limits Limits) (map[string]Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return ReadNPZFrom(f, st.Size(), path, limits)
}

// ReadNPZFrom is ReadNPZ for an archive that is not a file (an upload, an embedded test
// fixture): size bytes read from r, name naming it in errors.
func ReadNPZFrom(r io.ReaderAt, size int64, name string, limits Limits) (map[string]Array, error) {
	maxBytes := limits.MaxBytes
	switch {
	case maxBytes < 0:
		return nil, fmt.Errorf("%s: Limits.MaxBytes is negative (%d)", name, maxBytes)
	case maxBytes == 0:
		maxBytes = DefaultMaxBytes
	}
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names never become paths here
		return nil, fmt.Errorf("%s: not a readable .npz (zip) archive, or a truncated one: %w", name, err)
	}
	keys := make([]string, len(zr.File))
	seen := make(map[string]bool, len(zr.File))
	for i, f := range zr.File {
		key, ok := strings.CutSuffix(f.Name, ".npy")
		if !ok {
			return nil, fmt.Errorf("%s: entry %q is not a .npy array (np.savez writes NAME.npy entries only)", name, f.Name)
		}
		if seen[key] {
			return nil, fmt.Errorf("%s: array %q: the archive holds two entries of that name", name, key)
		}
		seen[key] = true
		keys[i] = key
	}
	out := make(map[string]Array, len(zr.File))
	var used int64
	for i, f := range zr.File {
		a, cost, err := readEntry(f, size, maxBytes, used)
		if err != nil {
			return nil, fmt.Errorf("%s: array %q: %w", name, keys[i], err)
		}
		used += cost
		out[keys[i]] = a
	}
	return out, nil
}

// readEntry reads one .npy entry, whose arrays may take maxBytes-used more bytes (the cost it
// returns).
func readEntry(f *zip.File, archiveSize, maxBytes, used int64) (Array, int64, error) {
	declared, comp := f.UncompressedSize64, f.CompressedSize64
	if comp > uint64(archiveSize) {
		return Array{}, 0, fmt.Errorf("the entry claims %d compressed bytes, more than the whole archive's %d: truncated or corrupt", comp, archiveSize)
	}
	switch f.Method {
	case zip.Store:
		if comp != declared {
			return Array{}, 0, fmt.Errorf("a stored (uncompressed) entry of %d bytes claims %d bytes: corrupt", comp, declared)
		}
	case zip.Deflate:
		if declared > 64 && (declared-64)/deflateRatio > comp {
			return Array{}, 0, fmt.Errorf("the entry claims %d bytes from %d compressed bytes, more than deflate can expand (%d:1): a zip bomb or a corrupt archive", declared, comp, deflateRatio)
		}
	default:
		return Array{}, 0, fmt.Errorf("zip compression method %d is not supported (np.savez stores entries, np.savez_compressed deflates them)", f.Method)
	}
	rc, err := f.Open()
	if err != nil {
		return Array{}, 0, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 32<<10)

	// The npy prefix (magic, version, header length) is read here, before npyio sees it: npyio
	// allocates whatever header length the file states (up to 4 GiB) and panics on headers
	// without a newline or with keys out of order, so the length is bounded first and npyio
	// is given exactly the header's bytes.
	var pre [12]byte
	if _, err := io.ReadFull(br, pre[:10]); err != nil {
		return Array{}, 0, fmt.Errorf("no .npy header: %w", noEOF(err))
	}
	if !bytes.Equal(pre[:6], npy.Magic[:]) {
		return Array{}, 0, errors.New("not a .npy array (no \\x93NUMPY magic)")
	}
	var prefix int
	var hlen uint64
	switch major := pre[6]; major {
	case 1:
		prefix, hlen = 10, uint64(binary.LittleEndian.Uint16(pre[8:10]))
	case 2, 3:
		if _, err := io.ReadFull(br, pre[10:12]); err != nil {
			return Array{}, 0, fmt.Errorf("truncated .npy header: %w", noEOF(err))
		}
		prefix, hlen = 12, uint64(binary.LittleEndian.Uint32(pre[8:12]))
	default:
		return Array{}, 0, fmt.Errorf(".npy format version %d.%d is not supported (1.0 to 3.0 are)", major, pre[7])
	}
	if hlen > maxHeaderBytes {
		return Array{}, 0, fmt.Errorf(".npy header of %d bytes, over %d", hlen, maxHeaderBytes)
	}
	if uint64(prefix)+hlen > declared {
		return Array{}, 0, fmt.Errorf("the .npy header (%d bytes) is longer than the entry (%d bytes)", uint64(prefix)+hlen, declared)
	}
	head := make([]byte, prefix+int(hlen))
	copy(head, pre[:prefix])
	if _, err := io.ReadFull(br, head[prefix:]); err != nil {
		return Array{}, 0, fmt.Errorf("truncated .npy header: %w", noEOF(err))
	}
	if head[6] == 3 {
		// Version 3 is version 2 with a UTF-8 header instead of latin-1, needed only for
		// structured dtypes' field names (refused below); npyio knows versions 1 and 2.
		head[6] = 2
	}
	data := &io.LimitedReader{R: br} // N is set once the header has been checked
	rp, err := newNPYReader(io.MultiReader(bytes.NewReader(head), data))
	if err != nil {
		return Array{}, 0, err
	}
	dt, canon, itemsize, err := parseDescr(rp.Header.Descr.Type)
	if err != nil {
		return Array{}, 0, err
	}
	what := string(dt)
	if dt == String {
		what = strings.Trim(strings.TrimSpace(rp.Header.Descr.Type), `'"`)
	}
	shape := make([]int64, len(rp.Header.Descr.Shape))
	for i, d := range rp.Header.Descr.Shape {
		if d < 0 {
			return Array{}, 0, fmt.Errorf("header says shape %v: a negative dimension", rp.Header.Descr.Shape)
		}
		shape[i] = int64(d)
	}
	elems := Elements(shape)
	if elems < 0 || elems > math.MaxInt || (elems > 0 && itemsize > math.MaxInt64/elems) {
		return Array{}, 0, fmt.Errorf("header says %s %s: more bytes than a 64-bit size holds", what, ShapeString(shape))
	}
	nbytes := elems * itemsize
	if holds := declared - uint64(len(head)); uint64(nbytes) != holds {
		return Array{}, 0, fmt.Errorf("header says %s %s (%d bytes) but the entry holds %d bytes", what, ShapeString(shape), nbytes, holds)
	}
	cost := nbytes
	if dt == String {
		// String headers; nbytes bounds their UTF-8 (at most 4 bytes a UTF-32 unit). With
		// '<U0' nothing is stored, so only this bounds the count.
		if elems > (math.MaxInt64-nbytes)/16 {
			return Array{}, 0, fmt.Errorf("header says %s %s: more strings than a 64-bit size holds", what, ShapeString(shape))
		}
		cost += 16 * elems
	}
	if left := maxBytes - used; cost > left {
		return Array{}, 0, fmt.Errorf("%s %s takes %d bytes, over the %d left of Limits.MaxBytes (%d)", what, ShapeString(shape), cost, left, maxBytes)
	}
	rp.Header.Descr.Type = canon
	data.N = nbytes
	values, err := readValues(rp, dt, int(elems), itemsize)
	if err != nil {
		return Array{}, 0, fmt.Errorf("reading %s %s: %w", what, ShapeString(shape), noEOF(err))
	}
	if data.N != 0 {
		return Array{}, 0, fmt.Errorf("reading %s %s: the data ends %d bytes early", what, ShapeString(shape), data.N)
	}
	// The entry must end here; reaching its end also checks its CRC.
	var one [1]byte
	if n, err := io.ReadFull(br, one[:]); n > 0 {
		return Array{}, 0, errors.New("the entry holds more bytes than its size says")
	} else if err != io.EOF {
		return Array{}, 0, fmt.Errorf("reading %s %s: %w", what, ShapeString(shape), err)
	}
	if rp.Header.Descr.Fortran && len(shape) > 1 {
		values = fortranToC(values, shape)
	}
	a := Array{DType: dt, Shape: shape, Values: values}
	if err := a.Check(); err != nil {
		return Array{}, 0, err // npyio read a different count: a bug, not the file's
	}
	return a, cost, nil
}

// noEOF reports a clean end of input inside an entry as the truncation it is.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// newNPYReader parses the header with npyio, turning its panics on malformed headers into an
// error.
func newNPYReader(r io.Reader) (rp *npy.Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			rp, err = nil, fmt.Errorf("malformed .npy header (%v)", p)
		}
	}()
	rp, err = npy.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("malformed .npy header: %w", err)
	}
	return rp, nil
}

// parseDescr maps a header's descr (e.g. "'<f4'", quotes included) onto a DType, the descr to
// give npyio for reading it, and the bytes an element takes in the file. npyio's own dtype
// descriptions are unexported, so the kind and size are read here; npyio still decodes the
// data with its byte order.
func parseDescr(s string) (dt DType, canon string, itemsize int64, err error) {
	t := strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(t, "["):
		return "", "", 0, fmt.Errorf("structured dtype %s (a record array) is not supported: save each field as its own array", t)
	case len(t) < 2 || !(t[0] == '\'' && t[len(t)-1] == '\'' || t[0] == '"' && t[len(t)-1] == '"'):
		return "", "", 0, fmt.Errorf("dtype %s is not supported", t)
	}
	t = t[1 : len(t)-1]
	desc := t
	order := byte('<')
	if t != "" && strings.IndexByte("<>|=", t[0]) >= 0 {
		if t[0] == '>' {
			order = '>' // npyio decodes big-endian; '=' and '|' are little-endian as NumPy writes them
		}
		t = t[1:]
	}
	if t == "" {
		return "", "", 0, fmt.Errorf("dtype %q is not supported", desc)
	}
	kind := t[0]
	size, perr := strconv.ParseInt(t[1:], 10, 64)
	if perr != nil || size < 0 || size > 1<<40 {
		size = -1
	}
	sized := func(d DType, kind string) (DType, string, int64, error) {
		if int64(d.Size()) != size {
			return "", "", 0, fmt.Errorf("dtype %q is not supported", desc)
		}
		o := order
		if size == 1 {
			o = '|'
		}
		return d, fmt.Sprintf("'%c%s%d'", o, kind, size), size, nil
	}
	unsupported := func(why string) (DType, string, int64, error) {
		return "", "", 0, fmt.Errorf("dtype %q (%s) is not supported", desc, why)
	}
	switch kind {
	case 'b':
		return sized(Bool, "u") // read as bytes: NumPy's bools are any nonzero byte, npyio's only 1
	case 'i':
		switch size {
		case 1:
			return sized(Int8, "i")
		case 2:
			return sized(Int16, "i")
		case 4:
			return sized(Int32, "i")
		case 8:
			return sized(Int64, "i")
		}
	case 'u':
		switch size {
		case 1:
			return sized(Uint8, "u")
		case 2:
			return sized(Uint16, "u")
		case 4, 8:
			return unsupported(fmt.Sprintf("uint%d; astype('int64') in NumPy first", 8*size))
		}
	case 'f':
		switch size {
		case 2:
			return sized(Float16, "u") // the half bits, as Float16 holds them
		case 4:
			return sized(Float32, "f")
		case 8:
			return sized(Float64, "f")
		}
		return unsupported("extended precision")
	case 'c':
		return unsupported("complex")
	case 'U':
		if size >= 0 {
			return String, fmt.Sprintf("'%cU%d'", order, size), 4 * size, nil
		}
	case 'S', 'a':
		if size >= 0 {
			return String, fmt.Sprintf("'|S%d'", size), size, nil
		}
	case 'O':
		return unsupported("object: pickled Python objects")
	case 'V':
		return unsupported("void or raw bytes, as NumPy saves ml_dtypes' bfloat16: save float32 instead")
	case 'M', 'm':
		return unsupported("datetime")
	}
	return "", "", 0, fmt.Errorf("dtype %q is not supported", desc)
}

// readValues reads n elements through npyio.
func readValues(rp *npy.Reader, dt DType, n int, itemsize int64) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("malformed .npy data (%v)", p)
		}
	}()
	switch dt {
	case Bool:
		b, err := readSlice(rp, make([]uint8, n))
		if err != nil {
			return nil, err
		}
		out := make([]bool, n)
		for i, x := range b.([]uint8) {
			out[i] = x != 0
		}
		return out, nil
	case String:
		if itemsize == 0 { // '<U0': every string empty, nothing stored (npyio would divide by 0)
			return make([]string, n), nil
		}
		s := make([]string, 0, n)
		if err := rp.Read(&s); err != nil {
			return nil, err
		}
		if len(s) != n {
			return nil, fmt.Errorf("npyio read %d strings, not %d", len(s), n)
		}
		return s, nil
	}
	values := makeValues(dt, n)
	if values == nil {
		return nil, fmt.Errorf("dtype %s cannot be read", dt)
	}
	return readSlice(rp, values)
}

// readSlice fills values, a slice of the type npyio is to decode, through a pointer of its
// own type, which npyio's Read requires; reflection makes that pointer so that makeValues
// stays the only switch from a dtype to its Go type.
func readSlice(rp *npy.Reader, values any) (any, error) {
	p := reflect.New(reflect.TypeOf(values))
	p.Elem().Set(reflect.ValueOf(values))
	if err := rp.Read(p.Interface()); err != nil {
		return nil, err
	}
	v := p.Elem()
	if n := reflect.ValueOf(values).Len(); v.Len() != n {
		return nil, fmt.Errorf("npyio read %d values, not %d", v.Len(), n)
	}
	return v.Interface(), nil
}

// fortranToC reorders column-major values row-major (npyio reads them in file order).
func fortranToC(values any, shape []int64) any {
	switch v := values.(type) {
	case []float32:
		return reorder(v, shape)
	case []float64:
		return reorder(v, shape)
	case []int8:
		return reorder(v, shape)
	case []int16:
		return reorder(v, shape)
	case []int32:
		return reorder(v, shape)
	case []int64:
		return reorder(v, shape)
	case []uint8:
		return reorder(v, shape)
	case []uint16:
		return reorder(v, shape)
	case []bool:
		return reorder(v, shape)
	case []string:
		return reorder(v, shape)
	}
	return values
}

func reorder[T any](v []T, shape []int64) []T {
	out := make([]T, len(v))
	stride := make([]int64, len(shape)) // column-major strides
	s := int64(1)
	for d := range shape {
		stride[d] = s
		s *= shape[d]
	}
	idx := make([]int64, len(shape))
	var off int64
	for i := range out {
		out[i] = v[off]
		for d := len(shape) - 1; d >= 0; d-- { // next row-major index, last dimension fastest
			idx[d]++
			off += stride[d]
			if idx[d] < shape[d] {
				break
			}
			off -= stride[d] * shape[d]
			idx[d] = 0
		}
	}
	return out
}

// WriteNPZ saves arrays as a NumPy .npz archive, each as NAME.npy, which np.load reads back
// under NAME: how a Go program hands predictions or prepared data to Python. Entries are
// stored uncompressed, as np.savez stores them. float16 is written as '<f2'; bfloat16, which
// NumPy lacks, as float32 ('<f4', exactly); strings as '<U' (UTF-32) when all are valid UTF-8,
// else as bytes ('|S'), trailing NULs lost as in NumPy. The archive is written to a
// temporary file in path's directory and renamed over path, so that no reader ever sees half
// an archive and a failure leaves an earlier file as it was.
func WriteNPZ(path string, arrays map[string]Array) (err error) {
	if err := checkForWrite(arrays); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := writeNPZ(tmp, arrays, zip.Store); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func checkForWrite(arrays map[string]Array) error {
	for name, a := range arrays {
		if name == "" {
			return errors.New("an array without a name")
		}
		if err := a.Check(); err != nil {
			return fmt.Errorf("array %q: %w", name, err)
		}
	}
	return nil
}

// writeNPZ writes the archive. npyio's writer is not used: it takes the shape from nested Go
// slices (a flat Array would need a [][]...T built for it), drops dimensions of size 0 (an
// empty array is written with shape (), which np.load cannot read), and inspects every
// element by reflection (about 0.6 s a million). The .npy format it would write is the
// few lines below.
func writeNPZ(w io.Writer, arrays map[string]Array, method uint16) error {
	if err := checkForWrite(arrays); err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	for _, name := range slices.Sorted(maps.Keys(arrays)) {
		ew, err := zw.CreateHeader(&zip.FileHeader{
			Name:     name + ".npy",
			Method:   method,
			Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC), // reproducible archives
		})
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(ew, 64<<10)
		if err := writeNPY(bw, arrays[name]); err != nil {
			return fmt.Errorf("array %q: %w", name, err)
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	return zw.Close()
}

// writeNPY writes one array in the .npy format, version 1.0 (2.0 for a header over 64 KiB),
// little-endian, C order, its header padded to 64 bytes as NumPy pads it.
func writeNPY(w io.Writer, a Array) error {
	descr := ""
	switch a.DType {
	case Bool:
		descr = "|b1"
	case Int8:
		descr = "|i1"
	case Uint8:
		descr = "|u1"
	case Int16:
		descr = "<i2"
	case Uint16:
		descr = "<u2"
	case Int32:
		descr = "<i4"
	case Int64:
		descr = "<i8"
	case Float16:
		descr = "<f2"
	case Float32, BFloat16:
		descr = "<f4"
	case Float64:
		descr = "<f8"
	}
	var strs []string
	width := 1 // NumPy's narrowest string dtype is 1 wide
	if a.DType == String {
		strs = a.Values.([]string)
		kind := "<U"
		for _, s := range strs {
			if !utf8.ValidString(s) {
				kind = "|S"
				break
			}
		}
		for _, s := range strs {
			n := len(s)
			if kind == "<U" {
				n = utf8.RuneCountInString(s)
			}
			width = max(width, n)
		}
		descr = kind + strconv.Itoa(width)
	}
	var dict strings.Builder
	fmt.Fprintf(&dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr)
	for i, d := range a.Shape {
		if i > 0 {
			dict.WriteString(", ")
		}
		dict.WriteString(strconv.FormatInt(d, 10))
	}
	if len(a.Shape) == 1 {
		dict.WriteString(",")
	}
	dict.WriteString("), }")
	prefix := 10
	if dict.Len()+1+prefix+63 > math.MaxUint16 {
		prefix = 12
	}
	pad := (64 - (prefix+dict.Len()+1)%64) % 64
	hlen := dict.Len() + pad + 1
	head := append([]byte(nil), npy.Magic[:]...)
	if prefix == 10 {
		head = append(head, 1, 0)
		head = binary.LittleEndian.AppendUint16(head, uint16(hlen))
	} else {
		head = append(head, 2, 0)
		head = binary.LittleEndian.AppendUint32(head, uint32(hlen))
	}
	head = append(head, dict.String()...)
	head = append(head, bytes.Repeat([]byte{' '}, pad)...)
	head = append(head, '\n')
	if _, err := w.Write(head); err != nil {
		return err
	}
	switch v := a.Values.(type) {
	case []string:
		var buf []byte
		for _, s := range v {
			buf = buf[:0]
			if descr[0] == '<' {
				for _, r := range s {
					buf = binary.LittleEndian.AppendUint32(buf, uint32(r))
				}
				buf = append(buf, make([]byte, 4*(width-utf8.RuneCountInString(s)))...)
			} else {
				buf = append(append(buf, s...), make([]byte, width-len(s))...)
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	case []uint16:
		if a.DType == BFloat16 {
			return writeChunks(w, v, BFloat16ToFloat32)
		}
		return writeChunks(w, v, same)
	case []float32:
		return writeChunks(w, v, same)
	case []float64:
		return writeChunks(w, v, same)
	case []int8:
		return writeChunks(w, v, same)
	case []int16:
		return writeChunks(w, v, same)
	case []int32:
		return writeChunks(w, v, same)
	case []int64:
		return writeChunks(w, v, same)
	case []uint8:
		_, err := w.Write(v)
		return err
	case []bool:
		return writeChunks(w, v, same)
	}
	return fmt.Errorf("dtype %s cannot be written", a.DType)
}

func same[T any](x T) T { return x }

// writeChunks writes f of each value, little-endian, a chunk at a time, so that a large array
// is never encoded whole in memory.
func writeChunks[S, D any](w io.Writer, v []S, f func(S) D) error {
	const chunk = 8 << 10
	vals := make([]D, 0, min(len(v), chunk))
	var buf []byte
	for i := 0; i < len(v); i += chunk {
		vals = vals[:0]
		for _, x := range v[i:min(i+chunk, len(v))] {
			vals = append(vals, f(x))
		}
		var err error
		if buf, err = binary.Append(buf[:0], binary.LittleEndian, vals); err != nil {
			return err
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
