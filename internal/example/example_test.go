package example

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Export puts a custom module's directory on the exporter's PYTHONPATH, ahead of the
// process's own, and leaves the process's PYTHONPATH as it was: a stand-in python records
// the PYTHONPATH it was started with.
func TestExportPythonPathIsTheExportersOnly(t *testing.T) {
	work := t.TempDir()
	fake := filepath.Join(work, "python")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nprintf '%s' \"$PYTHONPATH\" > \"$FAKE_PYTHON_OUT\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EMOTIONS_PYTHON", fake)
	t.Setenv("PYTHONPATH", "/theirs")
	for _, c := range []struct {
		module, want string
	}{
		{"mymetrics", "/mods" + string(os.PathListSeparator) + "/theirs"},
		{"", "/theirs"},
	} {
		seen := filepath.Join(t.TempDir(), "pythonpath")
		t.Setenv("FAKE_PYTHON_OUT", seen)
		if _, err := Export(t.TempDir(), "/mods", c.module, io.Discard); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(seen)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("module %q: the exporter's PYTHONPATH is %q, want %q", c.module, got, c.want)
		}
		if p := os.Getenv("PYTHONPATH"); p != "/theirs" {
			t.Errorf("module %q: this process's PYTHONPATH became %q", c.module, p)
		}
	}
}
