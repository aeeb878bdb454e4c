package tfbundle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
)

type testTensor struct {
	key     string
	dtype   DataType
	shape   []int64
	raw     []byte
	strings []string
}

// testTensors covers what the format distinguishes: dtypes of every element size, scalars,
// empty tensors, strings (empty, long enough for two-byte varint lengths), a tensor larger
// than the staging buffer, and keys enough (sharing long prefixes) for the index to need
// several 256 KiB blocks.
func testTensors() []testTensor {
	rng := rand.New(rand.NewPCG(7, 9))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	f32 := func(vals ...float32) []byte {
		b := make([]byte, 0, 4*len(vals))
		for _, v := range vals {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	ts := []testTensor{
		{key: "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE", dtype: typespb.DataType_DT_FLOAT, shape: []int64{3, 2}, raw: f32(1, -2, 3.5, 0, 1e-30, 7)},
		{key: "optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE", dtype: typespb.DataType_DT_INT64, shape: []int64{}, raw: binary.LittleEndian.AppendUint64(nil, 1234567)},
		{key: "empty", dtype: typespb.DataType_DT_FLOAT, shape: []int64{0, 5}, raw: nil},
		{key: "half", dtype: typespb.DataType_DT_HALF, shape: []int64{4}, raw: random(8)},
		{key: "bfloat16", dtype: typespb.DataType_DT_BFLOAT16, shape: []int64{2, 3}, raw: random(12)},
		{key: "flags", dtype: typespb.DataType_DT_BOOL, shape: []int64{3}, raw: []byte{1, 0, 1}},
		{key: "bytes", dtype: typespb.DataType_DT_UINT8, shape: []int64{5}, raw: random(5)},
		{key: "zeros", dtype: typespb.DataType_DT_DOUBLE, shape: []int64{2}, raw: make([]byte, 16)},
		{key: "_CHECKPOINTABLE_OBJECT_GRAPH", dtype: String, shape: []int64{}, strings: []string{string(random(300))}},
		{key: "vocabulary", dtype: String, shape: []int64{2, 2}, strings: []string{"angry", "", "happy", strings.Repeat("x", 200)}},
		{key: "big", dtype: typespb.DataType_DT_FLOAT, shape: []int64{9 << 18}, raw: random(9 << 20)},
	}
	for i := range 8000 { // an index of ~500 KB: two blocks, their separator a shortened key
		ts = append(ts, testTensor{key: fmt.Sprintf("model/layer_%08x_with_a_long_name/sublayer/kernel/.ATTRIBUTES/VARIABLE_VALUE", uint32(i)*2654435761), // distinct, scattered
			dtype: typespb.DataType_DT_FLOAT, shape: []int64{int64(i % 3)}, raw: random(4 * (i % 3))})
	}
	rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] }) // added unsorted: the index sorts
	return ts
}

func writeBundle(t *testing.T, prefix string, ts []testTensor, opts Options) *Writer {
	t.Helper()
	w, err := Create(prefix, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ts {
		if x.dtype == String {
			err = w.AddStrings(x.key, x.shape, x.strings)
		} else {
			err = w.Add(x.key, x.dtype, x.shape, x.raw)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestMatchesTensorFlow: TensorFlow reads the bundle (every key, dtype and value: it saves
// them again), and its own SaveV2 of those tensors in the same order writes the same bytes,
// data file and index, with direct I/O and without.
func TestMatchesTensorFlow(t *testing.T) {
	dir := t.TempDir()
	ts := testTensors()
	var keys strings.Builder
	for _, x := range ts {
		keys.WriteString(x.key + "\n")
	}
	keysFile := filepath.Join(dir, "keys")
	if err := os.WriteFile(keysFile, []byte(keys.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours", "variables")
	buffered := filepath.Join(dir, "buffered", "variables")
	theirs := filepath.Join(dir, "theirs", "variables")
	for _, d := range []string{ours, buffered} {
		if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := writeBundle(t, ours, ts, Options{})
	t.Logf("direct I/O: %v", w.Direct())
	if w := writeBundle(t, buffered, ts, Options{Buffered: true}); w.Direct() {
		t.Error("Options.Buffered: the data file was written with direct I/O")
	}
	testutil.RunPython(t, filepath.Join(testutil.RepoRoot(t), "internal", "tfbundle", "testdata", "resave.py"), ours, keysFile, theirs)
	for _, file := range []func(string) string{DataFile, IndexFile} {
		want, err := os.ReadFile(file(theirs))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{ours, buffered} {
			got, err := os.ReadFile(file(p))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes differ from TensorFlow's %d bytes (first difference at %d)",
					file(p), len(got), len(want), firstDifference(got, want))
			}
		}
	}
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestRefusesBadEntries(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "variables")
	w, err := Create(prefix, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("a", typespb.DataType_DT_FLOAT, []int64{1}, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := w.Add("a", typespb.DataType_DT_FLOAT, []int64{1}, make([]byte, 4)); err == nil || !strings.Contains(err.Error(), `"a" added twice`) {
		t.Errorf("a duplicate key: %v", err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed Add: no error")
	}
	for _, f := range []string{DataFile(prefix), IndexFile(prefix)} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left behind by a failed bundle (%v)", f, err)
		}
	}
	for name, add := range map[string]func(w *Writer) error{
		"the header's key": func(w *Writer) error { return w.Add("", typespb.DataType_DT_FLOAT, []int64{1}, make([]byte, 4)) },
		"a negative dim":   func(w *Writer) error { return w.Add("x", typespb.DataType_DT_FLOAT, []int64{-1}, nil) },
		"strings as raw":   func(w *Writer) error { return w.Add("x", String, []int64{}, nil) },
	} {
		w, err := Create(prefix, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := add(w); err == nil {
			t.Errorf("%s: accepted", name)
		}
		w.Abort()
	}
}

// TestDataFileLength: the padded direct write of the last block is cut back to the bytes
// written, whatever their count.
func TestDataFileLength(t *testing.T) {
	for _, n := range []int{0, 1, dioAlign - 1, dioAlign, dioAlign + 1, stagingSize, stagingSize + 3} {
		prefix := filepath.Join(t.TempDir(), "variables")
		w, err := Create(prefix, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add("x", typespb.DataType_DT_UINT8, []int64{int64(n)}, bytes.Repeat([]byte{7}, n)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(DataFile(prefix))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, bytes.Repeat([]byte{7}, n)) {
			t.Errorf("%d bytes added: the data file has %d", n, len(got))
		}
	}
}

// Where direct I/O is refused, at open (a file system without it; tmpfs before Linux 6.6
// created the file and then refused) or at a write (a buffer the device cannot take), the
// bundle is written through the page cache, with the same bytes.
func TestFallsBackToThePageCache(t *testing.T) {
	ts := testTensors()
	want := filepath.Join(t.TempDir(), "variables")
	writeBundle(t, want, ts, Options{Buffered: true})
	check := func(name, prefix string) {
		t.Helper()
		for _, file := range []func(string) string{DataFile, IndexFile} {
			a, errA := os.ReadFile(file(prefix))
			b, errB := os.ReadFile(file(want))
			if errA != nil || errB != nil {
				t.Fatal(errA, errB)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("%s: %s differs from the buffered bundle's", name, file(prefix))
			}
		}
	}

	defer func(open func(string) (*os.File, error)) { openDirect = open }(openDirect)
	openDirect = func(path string) (*os.File, error) {
		f, err := os.Create(path)
		if err == nil {
			f.Close()
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.EINVAL}
	}
	refused := filepath.Join(t.TempDir(), "variables")
	if w := writeBundle(t, refused, ts, Options{}); w.Direct() {
		t.Error("direct I/O refused at open: the writer still says it is direct")
	}
	check("refused at open", refused)
	openDirect = openDirectFile

	defer func() { misalign = 0 }()
	misalign = 1
	unaligned := filepath.Join(t.TempDir(), "variables")
	w := writeBundle(t, unaligned, ts, Options{})
	t.Logf("an unaligned buffer: direct I/O at the end %v (false where the kernel refused it)", w.Direct())
	check("an unaligned buffer", unaligned)
}
