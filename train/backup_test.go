package train

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/tfgraph"
)

// TestVolatileSavesBecomeDurable: a volatile save (the resume state every epoch) is not
// fsynced when written; saving the same state durably then costs only the fsyncs, and close
// makes whatever is still volatile durable, so no run ends with a checkpoint only in the page
// cache.
func TestVolatileSavesBecomeDurable(t *testing.T) {
	m, err := tfgraph.Load(testutil.TinyModel(t), tfgraph.Options{Device: "cpu", XLA: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	saved := makeDurable
	defer func() { makeDurable = saved }()
	var durable []string
	makeDurable = func(dir string) error { durable = append(durable, dir); return saved(dir) }

	root := t.TempDir()
	last, best := filepath.Join(root, "last"), filepath.Join(root, "best")
	state := map[string][]byte{"state.json": []byte(`{"epoch": 1}`)}
	c := newCheckpointer(m)
	if err := c.save(last, state, false); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(); err != nil {
		t.Fatal(err)
	}
	if len(durable) != 0 {
		t.Fatalf("a volatile save was made durable: %v", durable)
	}
	info, err := os.Stat(filepath.Join(last, "variables", "variables.index"))
	if err != nil {
		t.Fatalf("volatile save incomplete: %v", err)
	}
	// The same state again, durably: no second write (same file), only the fsyncs.
	if err := c.save(last, state, true); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(); err != nil {
		t.Fatal(err)
	}
	again, err := os.Stat(filepath.Join(last, "variables", "variables.index"))
	if err != nil || !os.SameFile(info, again) {
		t.Fatalf("the durable save of the same state wrote it again (%v)", err)
	}
	if !slices.Equal(durable, []string{last}) {
		t.Fatalf("made durable %v, want [%s]", durable, last)
	}

	// A different state is written; a volatile last/ left at close is made durable, a
	// durable best/ is not fsynced twice.
	durable = nil
	state = map[string][]byte{"state.json": []byte(`{"epoch": 2}`)}
	if err := c.save(best, nil, true); err != nil {
		t.Fatal(err)
	}
	if err := c.save(last, state, false); err != nil {
		t.Fatal(err)
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(durable, []string{last}) {
		t.Fatalf("close made durable %v, want [%s]", durable, last)
	}
	if b, _ := os.ReadFile(filepath.Join(last, "state.json")); string(b) != `{"epoch": 2}` {
		t.Fatalf("last/ holds %q", b)
	}
	reloaded, err := tfgraph.Load(last, tfgraph.Options{Device: "cpu", XLA: "off"})
	if err != nil {
		t.Fatalf("volatile last/ does not load: %v", err)
	}
	reloaded.Close()
}
