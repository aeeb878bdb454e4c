package arrays

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

func TestMain(m *testing.M) {
	os.Exit(testutil.Main(m))
}

var (
	fixturesOnce sync.Once
	fixturesDir  string
	fixturesErr  error
)

// fixtures is the directory of the .npz files NumPy wrote (testdata/numpy_fixtures.py), made
// once for the package's tests. It fails the test when the venv's Python is missing.
func fixtures(t *testing.T) string {
	t.Helper()
	py := testutil.Python(t)
	script := filepath.Join(testutil.RepoRoot(t), "arrays", "testdata", "numpy_fixtures.py")
	fixturesOnce.Do(func() {
		if fixturesDir, fixturesErr = testutil.SharedDir("arrays-npz-"); fixturesErr != nil {
			return
		}
		if out, err := exec.Command(py, script, fixturesDir).CombinedOutput(); err != nil {
			fixturesErr = fmt.Errorf("%s %s: %v\n%s", py, script, err, out)
		}
	})
	if fixturesErr != nil {
		t.Fatal(fixturesErr)
	}
	return fixturesDir
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// described is what numpy_fixtures.py says NumPy holds for one array.
type described struct {
	DType  string   `json:"dtype"`
	Kind   string   `json:"kind"`
	Shape  []int64  `json:"shape"`
	Values []string `json:"values"`
}

// encode is a's values as numpy_fixtures.py encodes them.
func encode(a Array, kind string) []string {
	out := make([]string, a.Len())
	for i := range out {
		switch v := a.Values.(type) {
		case []float32:
			out[i] = strconv.FormatUint(uint64(math.Float32bits(v[i])), 16)
		case []float64:
			out[i] = strconv.FormatUint(math.Float64bits(v[i]), 16)
		case []uint16:
			if a.DType == Float16 {
				out[i] = strconv.FormatUint(uint64(v[i]), 16)
			} else {
				out[i] = strconv.Itoa(int(v[i]))
			}
		case []string:
			if kind == "S" {
				out[i] = hex.EncodeToString([]byte(v[i]))
			} else {
				out[i] = v[i]
			}
		case []bool:
			out[i] = "0"
			if v[i] {
				out[i] = "1"
			}
		default:
			out[i] = strconv.FormatInt(intAt(a, i), 10)
		}
	}
	return out
}

func compareDescribed(t *testing.T, name string, got Array, want described) {
	t.Helper()
	if err := got.Check(); err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if string(got.DType) != want.DType || !slices.Equal(got.Shape, want.Shape) {
		t.Errorf("%s: got %s %v, NumPy has %s %v", name, got.DType, got.Shape, want.DType, want.Shape)
		return
	}
	if g := encode(got, want.Kind); !slices.Equal(g, want.Values) {
		t.Errorf("%s: got values %q, NumPy has %q", name, g, want.Values)
	}
}

func TestReadNPZNumPy(t *testing.T) {
	dir := fixtures(t)
	var want map[string]described
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "expected.json")), &want); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"plain.npz", "compressed.npz"} {
		t.Run(file, func(t *testing.T) {
			got, err := ReadNPZ(filepath.Join(dir, file), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if g, w := slices.Sorted(mapKeys(got)), slices.Sorted(mapKeys(want)); !slices.Equal(g, w) {
				t.Fatalf("arrays %q, NumPy wrote %q", g, w)
			}
			for k, w := range want {
				compareDescribed(t, k, got[k], w)
			}
		})
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestReadNPZUnsupported(t *testing.T) {
	dir := fixtures(t)
	for name, want := range map[string]string{
		"complex":    `array "x": dtype "<c16" (complex) is not supported`,
		"object":     `dtype "|O" (object: pickled Python objects) is not supported`,
		"uint32":     `dtype "<u4" (uint32; astype('int64') in NumPy first) is not supported`,
		"uint64":     `dtype "<u8" (uint64`,
		"struct":     `structured dtype [('a', '<i4'), ('b', '<f8')] (a record array) is not supported`,
		"datetime":   `dtype "<M8[D]" (datetime) is not supported`,
		"longdouble": `(extended precision) is not supported`,
		"bfloat16":   `dtype "<V2" (void or raw bytes, as NumPy saves ml_dtypes' bfloat16`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, "unsupported_"+name+".npz")
			if _, err := os.Stat(path); err != nil && name == "bfloat16" {
				t.Fatal("no ml_dtypes in the venv (TensorFlow installs it):", err)
			}
			_, err := ReadNPZ(path, Limits{})
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Errorf("got %v, want an error naming the file and saying %q", err, want)
			}
		})
	}
}

// npyBytes is a .npy entry with header dict (newline and length added, no padding) and data.
func npyBytes(version byte, dict string, data []byte) []byte {
	b := append([]byte("\x93NUMPY"), version, 0)
	if version == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)+1))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(dict)+1))
	}
	return append(append(append(b, dict...), '\n'), data...)
}

type rawEntry struct {
	name   string
	data   []byte // what the entry holds (compressed if method is Deflate)
	method uint16
	// Declared sizes and CRC; zero: those of data.
	uncompressed, compressed uint64
	crc                      uint32
}

// rawZip writes entries as they are, sizes and CRCs included, as a hostile archive would.
func rawZip(t *testing.T, entries ...rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: e.method,
			CRC32: e.crc, CompressedSize64: e.compressed, UncompressedSize64: e.uncompressed}
		if h.CompressedSize64 == 0 {
			h.CompressedSize64 = uint64(len(e.data))
		}
		if h.UncompressedSize64 == 0 {
			h.UncompressedSize64 = uint64(len(e.data))
		}
		if h.CRC32 == 0 {
			h.CRC32 = crc32.ChecksumIEEE(e.data)
		}
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflate(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write(b)
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// entryOf is the uncompressed bytes of entry name of a real archive.
func entryOf(t *testing.T, archive []byte, name string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withHeader is a real .npy entry with its header dict replaced (the data kept).
func withHeader(t *testing.T, entry []byte, dict string) []byte {
	t.Helper()
	if entry[6] != 1 {
		t.Fatalf("NumPy wrote version %d", entry[6])
	}
	hlen := int(binary.LittleEndian.Uint16(entry[8:10]))
	return npyBytes(1, dict, entry[10+hlen:])
}

func TestReadNPZHostile(t *testing.T) {
	plain := readFile(t, filepath.Join(fixtures(t), "plain.npz"))
	i8 := entryOf(t, plain, "i8.npy") // int64 [3]
	if !bytes.Contains(i8, []byte("'shape': (3,)")) {
		t.Fatalf("NumPy's i8.npy header: %q", i8[:80])
	}
	small := npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", make([]byte, 8))
	hugeHeader := append([]byte("\x93NUMPY\x02\x00"), 0xf0, 0xff, 0xff, 0xff)
	for _, tc := range []struct {
		name    string
		archive []byte
		limits  Limits
		want    string
	}{
		{"truncated", plain[:len(plain)/2], Limits{}, "x.npz: not a readable .npz (zip) archive"},
		{"not a zip", []byte("tokens,labels\n1,2\n"), Limits{}, "not a readable .npz (zip) archive"},
		{"empty file", nil, Limits{}, "not a readable .npz (zip) archive"},
		{"shape lies (more)", rawZip(t, rawEntry{name: "tokens.npy",
			data: withHeader(t, i8, "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000, 20), }")}), Limits{},
			`x.npz: array "tokens": header says int64 [1000000 20] (160000000 bytes) but the entry holds 24 bytes`},
		{"shape lies (fewer)", rawZip(t, rawEntry{name: "i8.npy",
			data: withHeader(t, i8, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }")}), Limits{},
			`header says int64 [2] (16 bytes) but the entry holds 24 bytes`},
		{"dtype lies", rawZip(t, rawEntry{name: "i8.npy",
			data: withHeader(t, i8, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }")}), Limits{},
			`header says int32 [3] (12 bytes) but the entry holds 24 bytes`},
		{"data cut", rawZip(t, rawEntry{name: "i8.npy", data: i8[:len(i8)-5]}), Limits{},
			`header says int64 [3] (24 bytes) but the entry holds 19 bytes`},
		{"negative shape", rawZip(t, rawEntry{name: "i8.npy",
			data: withHeader(t, i8, "{'descr': '<i8', 'fortran_order': False, 'shape': (-1, 3), }")}), Limits{},
			`header says shape [-1 3]: a negative dimension`},
		{"overflowing shape", rawZip(t, rawEntry{name: "i8.npy",
			data: withHeader(t, i8, "{'descr': '<i8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }")}), Limits{},
			`header says int64 [4611686018427387904 4]: more bytes than a 64-bit size holds`},
		{"shape beyond int", rawZip(t, rawEntry{name: "i8.npy",
			data: withHeader(t, i8, "{'descr': '<i8', 'fortran_order': False, 'shape': (99999999999999999999,), }")}), Limits{},
			`malformed .npy header`},
		{"header without newline", rawZip(t, rawEntry{name: "x.npy",
			data: append([]byte("\x93NUMPY\x01\x00\x05\x00"), "{'a':"...)}), Limits{}, `malformed .npy header`},
		{"header keys reordered", rawZip(t, rawEntry{name: "x.npy",
			data: npyBytes(1, "{'shape': (2,), 'fortran_order': False, 'descr': '<f4', }", make([]byte, 8))}), Limits{},
			`malformed .npy header`},
		{"header too long", rawZip(t, rawEntry{name: "x.npy", data: append(hugeHeader, make([]byte, 100)...)}), Limits{},
			`.npy header of 4294967280 bytes, over 65536`},
		{"header past the entry", rawZip(t, rawEntry{name: "x.npy", data: small[:40]}), Limits{},
			`the .npy header (68 bytes) is longer than the entry (40 bytes)`},
		{"no magic", rawZip(t, rawEntry{name: "x.npy", data: []byte("PK\x03\x04 not an npy at all")}), Limits{},
			`not a .npy array (no \x93NUMPY magic)`},
		{"entry too short", rawZip(t, rawEntry{name: "x.npy", data: []byte("\x93NUM")}), Limits{},
			`no .npy header: unexpected EOF`},
		{"version 9", rawZip(t, rawEntry{name: "x.npy", data: []byte("\x93NUMPY\x09\x00\x00\x00")}), Limits{},
			`.npy format version 9.0 is not supported`},
		{"zip bomb claim", rawZip(t, rawEntry{name: "x.npy", method: zip.Deflate, data: deflate(t, small),
			uncompressed: 1 << 40, crc: crc32.ChecksumIEEE(small)}), Limits{},
			`the entry claims 1099511627776 bytes from`},
		{"stored size claim", rawZip(t, rawEntry{name: "x.npy", data: small, uncompressed: 1 << 40, compressed: 1 << 40}), Limits{},
			`the entry claims 1099511627776 compressed bytes, more than the whole archive's`},
		{"stored sizes disagree", rawZip(t, rawEntry{name: "x.npy", data: small, uncompressed: 1 << 20}), Limits{},
			`a stored (uncompressed) entry of 76 bytes claims 1048576 bytes`},
		{"bzip2", rawZip(t, rawEntry{name: "x.npy", data: small, method: 12}), Limits{},
			`zip compression method 12 is not supported`},
		{"bad crc", rawZip(t, rawEntry{name: "x.npy", data: small, crc: 12345}), Limits{}, `checksum error`},
		{"duplicate names", rawZip(t, rawEntry{name: "x.npy", data: small}, rawEntry{name: "x.npy", data: small}), Limits{},
			`array "x": the archive holds two entries of that name`},
		{"not an npy entry", rawZip(t, rawEntry{name: "x.npy", data: small}, rawEntry{name: "README", data: []byte("hi")}), Limits{},
			`entry "README" is not a .npy array`},
		{"max bytes", plain, Limits{MaxBytes: 100}, `over the `},
		{"max bytes across arrays", rawZip(t, rawEntry{name: "a.npy", data: small}, rawEntry{name: "b.npy", data: small}),
			Limits{MaxBytes: 12}, `array "b": float32 [2] takes 8 bytes, over the 4 left of Limits.MaxBytes (12)`},
		{"negative max bytes", plain, Limits{MaxBytes: -1}, `Limits.MaxBytes is negative`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadNPZFrom(bytes.NewReader(tc.archive), int64(len(tc.archive)), "x.npz", tc.limits)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (arrays %v), want an error with %q", err, slices.Collect(mapKeys(got)), tc.want)
			}
			if !strings.HasPrefix(err.Error(), "x.npz: ") {
				t.Errorf("%v: does not name the file", err)
			}
		})
	}
}

func TestReadNPZLimitExact(t *testing.T) {
	small := npyBytes(1, "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }",
		[]byte("a\x00\x00\x00b\x00\x00\x00c\x00\x00\x00d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	archive := rawZip(t, rawEntry{name: "s.npy", data: small})
	// 2 strings: 2 x 12 bytes on disk + 2 x 16 bytes of string headers.
	got, err := ReadNPZFrom(bytes.NewReader(archive), int64(len(archive)), "s.npz", Limits{MaxBytes: 56})
	if err != nil {
		t.Fatal(err)
	}
	if s := got["s"].Values.([]string); !slices.Equal(s, []string{"abc", "d"}) {
		t.Errorf("got %q", s)
	}
	if _, err := ReadNPZFrom(bytes.NewReader(archive), int64(len(archive)), "s.npz", Limits{MaxBytes: 55}); err == nil {
		t.Error("55 bytes allowed a 56-byte array")
	}
}

// TestReadNPZOdd reads entries NumPy does not write but could read (and one that must fail).
func TestReadNPZOdd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry []byte
		want  Array
	}{
		{"version 2", npyBytes(2, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", []byte{1, 0, 0xff, 0xff}),
			Array{Int16, []int64{2}, []int16{1, -1}}},
		{"version 3", npyBytes(3, "{'descr': '<i2', 'fortran_order': False, 'shape': (1,), }", []byte{7, 0}),
			Array{Int16, []int64{1}, []int16{7}}},
		{"bool bytes other than 1", npyBytes(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", []byte{0, 1, 2}),
			Array{Bool, []int64{3}, []bool{false, true, true}}},
		{"U0 without end", npyBytes(1, "{'descr': '<U0', 'fortran_order': False, 'shape': (1152921504606846976,), }", nil),
			Array{}},
		{"U0", npyBytes(1, "{'descr': '<U0', 'fortran_order': False, 'shape': (2,), }", nil),
			Array{String, []int64{2}, []string{"", ""}}},
		{"empty 3-d", npyBytes(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 0, 3), }", nil),
			Array{Float64, []int64{2, 0, 3}, []float64{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			archive := rawZip(t, rawEntry{name: "a.npy", data: tc.entry})
			got, err := ReadNPZFrom(bytes.NewReader(archive), int64(len(archive)), "a.npz", Limits{})
			if tc.want.Values == nil {
				if err == nil || !strings.Contains(err.Error(), "more strings than a 64-bit size holds") {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a := got["a"]; a.DType != tc.want.DType || !slices.Equal(a.Shape, tc.want.Shape) || fmt.Sprint(a.Values) != fmt.Sprint(tc.want.Values) {
				t.Errorf("got %+v, want %+v", a, tc.want)
			}
		})
	}
}

// sample is one array of every dtype, of 0 to 3 dimensions.
func sample(t testing.TB) map[string]Array {
	must := func(a Array, err error) Array {
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	return map[string]Array{
		"f16":     {Float16, []int64{3}, []uint16{0x3c00, 0x7c00, 0x8001}},
		"bf16":    {BFloat16, []int64{2}, []uint16{0x3f80, 0xc0a0}},
		"f32":     must(Of([]float32{1.5, float32(math.Inf(-1)), 3, 4, 5, 6}, 2, 3)),
		"f64":     must(Of([]float64{math.Pi}, 1, 1, 1)),
		"i8":      must(Of([]int8{-128, 127})),
		"i16":     must(Of([]int16{-300})),
		"i32":     must(Of([]int32{1, 2, 3, 4, 5, 6, 7, 8}, 2, 2, 2)),
		"i64":     must(Of([]int64{math.MinInt64, math.MaxInt64})),
		"u8":      must(Of([]uint8{0, 255})),
		"u16":     must(Of([]uint16{65535})),
		"bool":    must(Of([]bool{true, false, true})),
		"str":     must(Of([]string{"a", "héllo", "", "日本"}, 2, 2)),
		"bytes":   must(Of([]string{"\xff\xfe", "ok"})),
		"scalar":  {Float32, []int64{}, []float32{2.5}},
		"empty":   must(Of([]float32{}, 0, 3)),
		"empty2":  must(Of([]int64{}, 4, 0)),
		"emptyS":  must(Of([]string{}, 0)),
		"nested/": must(Of([]int32{9})),
	}
}

func TestWriteNPZRoundTrip(t *testing.T) {
	want := sample(t)
	path := filepath.Join(t.TempDir(), "out.npz")
	if err := WriteNPZ(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNPZ(path, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range want {
		g := got[k]
		if w.DType == BFloat16 { // written as float32
			if w, err = Convert(w, Float32); err != nil {
				t.Fatal(err)
			}
		}
		if g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) || fmt.Sprint(g.Values) != fmt.Sprint(w.Values) {
			t.Errorf("%s: got %+v, wrote %+v", k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d arrays, wrote %d", len(got), len(want))
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("the archive: %v, %v", st.Mode(), err)
	}
}

func TestWriteNPZNumPy(t *testing.T) {
	arrays := sample(t)
	path := filepath.Join(t.TempDir(), "out.npz")
	if err := WriteNPZ(path, arrays); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(testutil.RepoRoot(t), "arrays", "testdata", "numpy_fixtures.py")
	var loaded map[string]described
	if err := json.Unmarshal([]byte(testutil.RunPython(t, script, "--describe", path)), &loaded); err != nil {
		t.Fatal(err)
	}
	for k, a := range arrays {
		l, ok := loaded[k]
		if !ok {
			t.Errorf("np.load has no %q", k)
			continue
		}
		if a.DType == BFloat16 {
			a, _ = Convert(a, Float32)
		}
		compareDescribed(t, k, a, l)
	}
	if loaded["bytes"].Kind != "S" || loaded["str"].Kind != "U" {
		t.Errorf("strings: NumPy reads kinds %s and %s, want S (not UTF-8) and U", loaded["bytes"].Kind, loaded["str"].Kind)
	}
}

func TestWriteNPZErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keep.npz")
	good := map[string]Array{"x": {Float32, []int64{1}, []float32{1}}}
	if err := WriteNPZ(path, good); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, path)
	for _, bad := range []map[string]Array{
		{"x": {Float32, []int64{2}, []float32{1}}},
		{"": {Float32, []int64{1}, []float32{1}}},
		{"x": {"complex64", []int64{1}, []float32{1}}},
	} {
		if err := WriteNPZ(path, bad); err == nil {
			t.Errorf("WriteNPZ(%v) succeeded", bad)
		}
	}
	if !bytes.Equal(readFile(t, path), before) {
		t.Error("a failed write changed the earlier archive")
	}
	if err := WriteNPZ(filepath.Join(dir, "no-such-dir", "x.npz"), good); err == nil {
		t.Error("wrote into a missing directory")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

// arrayBytes is the memory a's values take: what Limits.MaxBytes bounds.
func arrayBytes(a Array) int64 {
	n := int64(a.Len()) * int64(a.DType.Size())
	if s, ok := a.Values.([]string); ok {
		for _, x := range s {
			n += int64(len(x))
		}
	}
	return n
}

// FuzzReadNPZ reads each input as an archive and, so that mutations reach the .npy parsing
// past the zip's CRCs, as the one entry of a valid archive. Neither may panic, allocate much
// beyond Limits.MaxBytes, or return arrays over it.
func FuzzReadNPZ(f *testing.F) {
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		var buf bytes.Buffer
		if err := writeNPZ(&buf, sample(f), method); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	for _, a := range sample(f) {
		var buf bytes.Buffer
		if err := writeNPY(&buf, a); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	for _, h := range []struct{ descr, shape string }{
		{"'>i4'", "(2, 3)"}, {"'<U2'", "(3, 2)"}, {"'>U1'", "(2,)"}, {"'|S3'", "(2,)"}, {"'<f2'", "(2, 1, 3)"}, {"'|b1'", "(6,)"},
	} {
		for _, fortran := range []string{"False", "True"} {
			dict := fmt.Sprintf("{'descr': %s, 'fortran_order': %s, 'shape': %s, }", h.descr, fortran, h.shape)
			f.Add(npyBytes(1, dict, bytes.Repeat([]byte{'a', 0, 0, 0}, 6)))
		}
	}
	const maxBytes = 1 << 20
	read := func(t *testing.T, archive []byte) {
		files := 0
		if zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive))); err == nil {
			files = len(zr.File)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := ReadNPZFrom(bytes.NewReader(archive), int64(len(archive)), "fuzz.npz", Limits{MaxBytes: maxBytes})
		runtime.ReadMemStats(&after)
		// The arrays, a transient copy (Fortran order, string decoding), and per entry a zip
		// reader, a decompressor and a buffer; the zip directory grows with the input.
		if alloc, bound := after.TotalAlloc-before.TotalAlloc, uint64(3*maxBytes+(files+1)*(256<<10)+64*len(archive)); alloc > bound {
			t.Fatalf("allocated %d bytes, over %d (%d entries)", alloc, bound, files)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.npz: ") {
				t.Errorf("%v: does not name the file", err)
			}
			return
		}
		var total int64
		for k, a := range got {
			if err := a.Check(); err != nil {
				t.Fatalf("array %q: %v", k, err)
			}
			total += arrayBytes(a)
		}
		if total > maxBytes {
			t.Fatalf("the arrays take %d bytes, over MaxBytes %d", total, maxBytes)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		read(t, data)
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "x.npy", Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		read(t, buf.Bytes())
	})
}
