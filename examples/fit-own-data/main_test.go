package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/train"
)

func TestMain(m *testing.M) { os.Exit(testutil.Main(m)) }

// The example does what its comment says: 3 epochs, a resume, 5 epochs in all, and the blobs
// are learnable (the best validation loss is below chance).
func TestFitOwnDataExample(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	res, err := run(context.Background(), testutil.TinyModel(t), out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Epochs != 5 || !res.Resumed || res.BestEpoch < 1 || res.BestEpoch > 5 {
		t.Fatalf("result %+v", res)
	}
	if res.ValLoss <= 0 || res.ValLoss > 1.2 { // ln 4 = 1.386 is chance for 4 classes
		t.Fatalf("best val_loss %.3f: the blobs were not learnt", res.ValLoss)
	}
	st, err := train.LoadState(out)
	if err != nil || len(st.History) != 5 || st.Epoch != 5 {
		t.Fatalf("resume state after the run: %+v, %v", st, err)
	}
}
