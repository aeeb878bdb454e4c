package tfgraph

import (
	"sync"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// TestWarmUpChangesNothing: every warm-up role runs without changing the model's state, and a
// learning rate set while "learning_rate" warm-ups run is never written back over.
func TestWarmUpChangesNothing(t *testing.T) {
	m, err := Load(testutil.TinyModel(t), Options{Device: "cpu", XLA: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.SetLearningRate(0.005); err != nil {
		t.Fatal(err)
	}
	before, err := m.State()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WarmUp("serve", "evaluate", "snapshot", "learning_rate"); err != nil {
		t.Fatal(err)
	}
	after, err := m.State()
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("warm-up changed the optimizer state: %+v -> %+v", before, after)
	}
	if err := m.WarmUp("train"); err == nil {
		t.Fatal("an unknown role was accepted")
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if err := m.WarmUp("learning_rate"); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var last float64
	for i := range 20 {
		if last, err = m.SetLearningRate(0.001 * float64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if st, err := m.State(); err != nil || st.LearningRate != last {
		t.Fatalf("learning rate %v after the warm-ups, want the last one set, %v (%v)", st.LearningRate, last, err)
	}
}
