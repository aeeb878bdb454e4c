package atomicfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteDirReplacesWholeAndCleansUp(t *testing.T) {
	for name, write := range map[string]func(string, func(string) error) error{"WriteDir": WriteDir, "WriteDirNoSync": WriteDirNoSync} {
		t.Run(name, func(t *testing.T) { testWriteDir(t, write) })
	}
}

func testWriteDir(t *testing.T, WriteDir func(string, func(string) error) error) {
	root := t.TempDir()
	dst := filepath.Join(root, "best")
	for i, content := range []string{"first", "second"} {
		err := WriteDir(dst, func(tmp string) error {
			return os.WriteFile(filepath.Join(tmp, "v"), []byte(content), 0o644)
		})
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "v")); string(b) != content {
			t.Fatalf("after write %d dst holds %q", i, b)
		}
	}
	// A failing fill leaves the previous content and no temporary directory.
	boom := errors.New("boom")
	if err := WriteDir(dst, func(string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("want the fill error, got %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "v")); string(b) != "second" {
		t.Fatalf("failed write changed dst: %q", b)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

// TestFsyncs: WriteDir fsyncs the files and the rename, WriteDirNoSync nothing, and
// MakeDurable afterwards what WriteDir would have.
func TestFsyncs(t *testing.T) {
	saved := fsyncFile
	defer func() { fsyncFile = saved }()
	synced := map[string]int{}
	fsyncFile = func(f *os.File) error { synced[f.Name()]++; return saved(f) }
	root := t.TempDir()
	fill := func(tmp string) error { return os.WriteFile(filepath.Join(tmp, "v"), []byte("x"), 0o644) }

	if err := WriteDir(filepath.Join(root, "a"), fill); err != nil {
		t.Fatal(err)
	}
	durable := len(synced)
	if durable < 3 { // the file, the temporary directory, the parent
		t.Fatalf("WriteDir fsynced %v", synced)
	}
	clear(synced)
	if err := WriteDirNoSync(filepath.Join(root, "b"), fill); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 0 {
		t.Fatalf("WriteDirNoSync fsynced %v", synced)
	}
	if err := MakeDurable(filepath.Join(root, "b")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(root, "b", "v"), filepath.Join(root, "b"), root} {
		if synced[p] == 0 {
			t.Errorf("MakeDurable did not fsync %s: %v", p, synced)
		}
	}
}

func TestWriteFileAndLinkTree(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f.json")
	if err := WriteFile(p, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "b" {
		t.Fatalf("got %q", b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	os.MkdirAll(filepath.Join(root, "src", "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "src", "sub", "x"), []byte("x"), 0o644)
	if err := LinkTree(filepath.Join(root, "src"), filepath.Join(root, "dst")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "dst", "sub", "x")); string(b) != "x" {
		t.Fatalf("LinkTree copied %q", b)
	}
	if err := WriteFile(filepath.Join(root, "missing", "f"), nil, 0o644); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}

// TestReplaceFallbackWithoutExchange runs the path taken on systems (or filesystems) with no
// atomic exchange: the old directory is moved aside, the new one renamed in, the old removed.
func TestReplaceFallbackWithoutExchange(t *testing.T) {
	saved := exchangeNames
	exchangeNames = func(string, string) error { return errors.New("no exchange here") }
	defer func() { exchangeNames = saved }()
	root := t.TempDir()
	dst := filepath.Join(root, "last")
	for _, content := range []string{"old", "new"} {
		err := WriteDir(dst, func(tmp string) error {
			return os.WriteFile(filepath.Join(tmp, "v"), []byte(content), 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "v")); string(b) != "new" {
		t.Fatalf("dst holds %q, want new", b)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Fatalf("the fallback left behind: %v", entries)
	}
}
