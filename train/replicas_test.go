package train

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/tfserving"
)

// Data-parallel training proven on CPU: the CPU split into 2 logical devices, Go's Fit with 2
// replicas against Keras' fit under MirroredStrategy over the same 2 devices (same builder,
// initial weights, arrays, no shuffling). The tiny backbone has BatchNorm, whose statistics
// MirroredStrategy keeps per replica; the validation runs each replica on its half of every
// batch with its own statistics, so val_loss shows whether Go kept them the same way.
// Then the run's last/ resumes with 1 replica on 1 device, and its TF Serving export
// predicts on 1 device: nothing saved names a device.
func TestFitReplicasEqualsKerasMirroredFit(t *testing.T) {
	const epochs, batch, replicas = 3, 32, 2
	data := parityData(t, 96, 64, 32, 4)
	exportArgs := []string{"--backbone", "tiny", "--seed", "3", "--input-size", "32"}
	dir := testutil.ExportModel(t, append(exportArgs, "--replicas", "2")...)
	m, err := tfgraph.Load(dir, tfgraph.Options{Device: "cpu", CPUDevices: replicas})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if cpus := strings.Count(strings.Join(m.Devices(), " "), "(CPU)"); cpus != replicas {
		t.Fatalf("session devices %v: want %d CPUs", m.Devices(), replicas)
	}
	if got := m.ReplicaCounts(); len(got) != 1 || got[0] != replicas {
		t.Fatalf("replica counts %v, want [%d]", got, replicas)
	}
	run := t.TempDir()
	var goHist []EpochLogs
	collect := EpochEndFunc("collect", func(_ int, logs EpochLogs) error {
		goHist = append(goHist, copyLogs(logs))
		return nil
	})
	if _, err := Fit(context.Background(), m, data.source(batch), data.valid(), WithReplicas(replicas),
		WithEpochs(epochs), WithValidationBatchSize(batch), WithRunDir(run), WithCallbacks(collect)); err != nil {
		t.Fatal(err)
	}
	if m.TrainSignature() != "train_step_replicas_2" {
		t.Fatalf("trained with %s", m.TrainSignature())
	}
	keras := kerasFit(t, data, epochs, batch, []string{"--replicas", "2"}, exportArgs)
	worst := compareHistory(t, keras, goHist, epochs, 1e-5)
	t.Logf("2 replicas: largest relative difference from Keras fit under MirroredStrategy over %d epochs: %.3g", epochs, worst)

	// The same steps on one device (one tower on the whole batch) end elsewhere: the
	// comparison above would catch replicas silently not being used.
	single := kerasFit(t, data, epochs, batch, nil, exportArgs)
	if d := math.Abs(single["val_loss"].([]any)[epochs-1].(float64) - goHist[epochs-1]["val_loss"]); d < 1e-6 {
		t.Errorf("2 replicas and 1 give the same final val_loss (difference %g): the towers did not differ", d)
	}

	// Resumed with 1 replica on a session with one CPU device.
	st, err := LoadState(run)
	if err != nil {
		t.Fatal(err)
	}
	one, err := tfgraph.Load(LastDir(run), tfgraph.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	var resumed []EpochLogs
	more := EpochEndFunc("collect", func(_ int, logs EpochLogs) error {
		resumed = append(resumed, copyLogs(logs))
		return nil
	})
	if _, err := Fit(context.Background(), one, data.source(batch), data.valid(), WithResume(st),
		WithEpochs(epochs+1), WithValidationBatchSize(batch), WithRunDir(run), WithCallbacks(more)); err != nil {
		t.Fatal(err)
	}
	if len(resumed) != 1 || !(resumed[0]["val_loss"] > 0) || one.TrainSignature() != "train_step" {
		t.Fatalf("resumed with 1 replica: %v epochs logged, signature %s", resumed, one.TrainSignature())
	}

	// Exported for TF Serving and predicted on one device: the export's probabilities are
	// those of last/ on the 2-device session it was trained on.
	served, err := tfserving.Export(LastDir(run), filepath.Join(t.TempDir(), "serving"), 1)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := tfgraph.Load(served, tfgraph.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	got, err := sm.Predict(data.xValid, data.nValid)
	if err != nil {
		t.Fatal(err)
	}
	two, err := tfgraph.Load(LastDir(run), tfgraph.Options{Device: "cpu", CPUDevices: replicas})
	if err != nil {
		t.Fatal(err)
	}
	defer two.Close()
	want, err := two.Predict(data.xValid, data.nValid)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("probability %d: served export %g, last/ on 2 devices %g", i, got[i], want[i])
		}
	}
}
