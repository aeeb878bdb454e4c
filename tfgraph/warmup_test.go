package tfgraph

import (
	"bytes"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// TestWarmUpAndRefresh: the warm-up roles change nothing in the model, and a snapshot
// refreshed after a learning-rate change holds what a snapshot taken then holds.
func TestWarmUpAndRefresh(t *testing.T) {
	m, err := Load(testutil.TinyModel(t), Options{Device: "cpu", XLA: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	before, err := m.State()
	if err != nil {
		t.Fatal(err)
	}
	old, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WarmUp("serve", "evaluate", "snapshot"); err != nil {
		t.Fatal(err)
	}
	if after, err := m.State(); err != nil || after != before {
		t.Fatalf("warm-up changed the optimizer state: %+v -> %+v (%v)", before, after, err)
	}
	if err := m.WarmUp("train"); err == nil {
		t.Fatal("an unknown role was accepted")
	}

	if _, err := m.SetLearningRate(before.LearningRate / 5); err != nil {
		t.Fatal(err)
	}
	refreshed, err := old.RefreshLearningRate()
	if err != nil {
		t.Fatal(err)
	}
	defer refreshed.Release()
	fresh, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Release()
	changed := 0
	for i, key := range fresh.plan.keys {
		a, b := tensorContent(t, refreshed.values[i]), tensorContent(t, fresh.values[i])
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the refreshed snapshot differs from a fresh one", key)
		}
		if !bytes.Equal(tensorContent(t, old.values[i]), b) {
			changed++
		}
	}
	if changed != 1 {
		t.Errorf("%d entries changed with the learning rate, want 1", changed)
	}
}

func tensorContent(t *testing.T, v *tf.Tensor) []byte {
	t.Helper()
	var buf bytes.Buffer
	if v.DataType() == tf.String {
		s, ok := v.Value().(string)
		if !ok {
			t.Fatalf("string tensor of shape %v", v.Shape())
		}
		return []byte(s)
	}
	if _, err := v.WriteContentsTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
