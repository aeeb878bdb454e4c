package tfserving

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// testdata/bundle/variables.index is the tiny test model's (written by TensorFlow's
// BundleWriter), so the index reader and its fuzz target need no Python. Its shard, not
// kept, had seedShardBytes bytes.
const (
	seedIndex      = "testdata/bundle/variables.index"
	seedShardBytes = 124370
)

func readSeedIndex(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(seedIndex)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBundleIndex(t *testing.T) {
	b := readSeedIndex(t)
	ext, err := readBundleIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	// TensorFlow writes the tensors back to back: the last one ends where the shard does.
	if ext.numShards != 1 || len(ext.shardEnd) != 1 || ext.shardEnd[0] != seedShardBytes {
		t.Fatalf("index says %d shards reaching %v; the shard had %d bytes", ext.numShards, ext.shardEnd, seedShardBytes)
	}

	// Every prefix (a copy cut short) and every flipped byte is refused or still reads whole;
	// none panics, and a cut one is never taken for complete.
	for n := range len(b) {
		if _, err := readBundleIndex(b[:n]); err == nil {
			t.Fatalf("the first %d of %d bytes read as a whole index", n, len(b))
		}
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x41
		if e, err := readBundleIndex(c); err == nil && i < len(b)-tableFooterLen {
			t.Errorf("byte %d flipped: read as %+v, the block checksum should have caught it", i, e)
		}
	}
}

func TestCheckVariablesShortOrMissingShard(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "variables")
	index := readSeedIndex(t)
	data := make([]byte, seedShardBytes) // only its size is checked
	shard := shardName(prefix, 0, 1)
	for _, c := range []struct {
		index, data []byte
		want        string
	}{
		{nil, nil, "variables.index is missing"},
		{index[:len(index)/2], nil, "table magic"},
		{index, nil, "variables.data-00000-of-00001 is missing"},
		{index, data[:len(data)-1], "still being copied"},
		{index, data, ""},
	} {
		os.Remove(prefix + ".index")
		os.Remove(shard)
		if c.index != nil {
			os.WriteFile(prefix+".index", c.index, 0o644)
		}
		if c.data != nil {
			os.WriteFile(shard, c.data, 0o644)
		}
		err := checkVariables(prefix)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("index %d bytes, shard %d bytes: %v, want an error with %q", len(c.index), len(c.data), err, c.want)
		}
	}
}

// TestBundleIndexOfExport reads the index of a version `emotions export` writes.
func TestBundleIndexOfExport(t *testing.T) {
	dir := exportOf(t, testutil.TinyModel(t))
	mg := readMetaGraphOf(t, dir)
	if !hasVariables(mg) {
		t.Fatal("the tiny model's serving graph has no variables")
	}
	if err := checkComplete(dir, mg); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "variables"))
	if err := checkComplete(dir, mg); err == nil || !strings.Contains(err.Error(), "variables.index is missing") {
		t.Fatalf("without variables/: %v", err)
	}
}

// FuzzBundleIndex: a variables.index as found on disk. Reading it never panics nor
// allocates beyond the file; what it accepts names shards within the count it declares.
func FuzzBundleIndex(f *testing.F) {
	b := readSeedIndex(f)
	f.Add(b)
	f.Add(b[len(b)/2:])
	f.Fuzz(func(t *testing.T, b []byte) {
		ext, err := readBundleIndex(b)
		if err != nil {
			return
		}
		if ext.numShards < 1 || ext.numShards > maxShards {
			t.Fatalf("accepted %d shards", ext.numShards)
		}
		for shard, end := range ext.shardEnd {
			if shard < 0 || shard >= ext.numShards || end < 0 {
				t.Fatalf("accepted shard %d of %d reaching %d", shard, ext.numShards, end)
			}
		}
	})
}

// appendTFRecord frames data as one TFRecord.
func appendTFRecord(buf, data []byte) []byte {
	var head [12]byte
	binary.LittleEndian.PutUint64(head[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(head[8:], maskedCRC(head[:8]))
	buf = append(append(buf, head[:]...), data...)
	return binary.LittleEndian.AppendUint32(buf, maskedCRC(data))
}

func TestTFRecords(t *testing.T) {
	var file []byte
	records := [][]byte{[]byte("one"), {}, bytes.Repeat([]byte{7}, 300)}
	for _, r := range records {
		file = appendTFRecord(file, r)
	}
	var got [][]byte
	if err := readTFRecords(bytes.NewReader(file), 300, 3, func(r []byte) error { got = append(got, bytes.Clone(r)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !bytes.Equal(got[0], records[0]) || len(got[1]) != 0 || !bytes.Equal(got[2], records[2]) {
		t.Fatalf("read back %q", got)
	}
	for _, c := range []struct {
		file   []byte
		maxLen int64
		max    int
		want   string
	}{
		{file, 299, 3, "more than the 299"},
		{file, 300, 2, "more than 2 records"},
		{file[:len(file)-1], 300, 3, "cut short"},
		{file[:5], 300, 3, "header cut short"},
		{append(bytes.Clone(file[:14]), 'X', 'e', 0, 0, 0, 0), 300, 3, "data fails its checksum"},
		{append([]byte{0xff}, file[1:]...), 300, 3, "length fails its checksum"},
	} {
		err := readTFRecords(bytes.NewReader(c.file), c.maxLen, c.max, func([]byte) error { return nil })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d bytes: %v, want %q", len(c.file), err, c.want)
		}
	}
}

// FuzzTFRecords: a warm-up file as found on disk. Reading never panics nor allocates a
// record over the bound; records framed by appendTFRecord read back as written.
func FuzzTFRecords(f *testing.F) {
	f.Add(appendTFRecord(appendTFRecord(nil, []byte("a")), []byte("bc")), []byte("xyz"))
	f.Fuzz(func(t *testing.T, file, record []byte) {
		const maxLen = 1 << 12
		readTFRecords(bytes.NewReader(file), maxLen, 4, func(r []byte) error {
			if len(r) > maxLen {
				t.Fatalf("a record of %d bytes passed the %d bound", len(r), maxLen)
			}
			return nil
		})
		framed := appendTFRecord(nil, record)
		var got []byte
		err := readTFRecords(bytes.NewReader(framed), int64(len(record)), 1, func(r []byte) error { got = bytes.Clone(r); return nil })
		if err != nil || !bytes.Equal(got, record) {
			t.Fatalf("round trip of %q: %q, %v", record, got, err)
		}
	})
}
