package tfserving

import (
	"encoding/base64"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// kerasReference is what testdata/any_savedmodel.py writes: the inputs it ran and what
// TensorFlow's serving_default answered for them.
type kerasReference struct {
	Inputs struct {
		X   [][]float32 `json:"x"`
		IDs [][]int32   `json:"ids"`
	} `json:"inputs"`
	Outputs map[string][][]float32 `json:"outputs"`
}

// A team's own Keras model.export() (two named inputs, float32 and int32; two outputs), no
// emotions.json: served with all its signatures, REST row and columnar and gRPC answering
// what TensorFlow answers in Python.
func TestServeKerasExport(t *testing.T) {
	dir := t.TempDir()
	testutil.RunPython(t, filepath.Join("testdata", "any_savedmodel.py"), dir)
	var ref kerasReference
	raw, err := os.ReadFile(filepath.Join(dir, "keras.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "keras"), filepath.Join(base, "1")); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ModelBase = base
	cfg.Poll = 0
	cfg.VersionSettle = 0
	var logs lockedBuffer
	cfg.Log = log.New(&logs, "", 0)
	ts := startServer(t, cfg)

	const found = "model emo version 1: a SavedModel without emotions.json: signatures " +
		"serve(ids: int32[-1,5], x: float32[-1,8]) -> (output_0: float32[-1,3], output_1: float32[-1,1]); " +
		"serving_default(ids: int32[-1,5], x: float32[-1,8]) -> (output_0: float32[-1,3], output_1: float32[-1,1])"
	if !strings.Contains(logs.String(), found) {
		t.Errorf("log lacks %q:\n%s", found, logs.String())
	}
	if strings.Contains(logs.String(), "waiting for") {
		t.Errorf("log waits for a version that is there:\n%s", logs.String())
	}
	outNames := []string{"output_0", "output_1"}
	want := func(name string) []float32 { return flatten(ref.Outputs[name]) }
	n := len(ref.Inputs.X)

	// Row format, on both signatures: one object per instance, one per prediction.
	for _, sig := range []string{"", "serve"} {
		instances := make([]map[string]any, n)
		for i := range instances {
			instances[i] = map[string]any{"x": ref.Inputs.X[i], "ids": ref.Inputs.IDs[i]}
		}
		body, _ := json.Marshal(map[string]any{"signature_name": sig, "instances": instances})
		var rows struct{ Predictions []map[string][]float32 }
		if code, resp := call(t, "POST", ts.url+":predict", "application/json", body, &rows); code != http.StatusOK {
			t.Fatalf("row predict (signature %q): %d %s", sig, code, resp)
		}
		for _, name := range outNames {
			var got []float32
			for _, p := range rows.Predictions {
				got = append(got, p[name]...)
			}
			if !closeEnough(got, want(name), 1e-6) {
				t.Errorf("row predict (signature %q) %s = %v, TensorFlow %v", sig, name, got, want(name))
			}
		}
	}

	// Columnar format.
	body, _ := json.Marshal(map[string]any{"inputs": map[string]any{"x": ref.Inputs.X, "ids": ref.Inputs.IDs}})
	var cols struct{ Outputs map[string][][]float32 }
	if code, resp := call(t, "POST", ts.url+":predict", "application/json", body, &cols); code != http.StatusOK {
		t.Fatalf("columnar predict: %d %s", code, resp)
	}
	for _, name := range outNames {
		if got := flatten(cols.Outputs[name]); !closeEnough(got, want(name), 1e-6) {
			t.Errorf("columnar predict %s = %v, TensorFlow %v", name, got, want(name))
		}
	}

	// gRPC: x as tensor_content, ids in the typed int_val field.
	var ids []int32
	for _, r := range ref.Inputs.IDs {
		ids = append(ids, r...)
	}
	idsProto := &tensorpb.TensorProto{Dtype: typespb.DataType_DT_INT32, IntVal: ids,
		TensorShape: &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: int64(n)}, {Size: 5}}}}
	x := flatten(ref.Inputs.X)
	xProto := rawTensor{dtype: tf.Float, shape: []int64{int64(n), 8}, data: float32Bytes(x)}.proto()
	resp, err := grpcPredict(dialGRPC(t, ts.grpc), predictRequest("emo", map[string]*tensorpb.TensorProto{"x": xProto, "ids": idsProto}))
	if err != nil {
		t.Fatalf("gRPC Predict: %v", err)
	}
	for _, name := range outNames {
		p := resp.GetOutputs()[name]
		vals, err := rawTensor{dtype: tf.DataType(p.GetDtype()), data: p.GetTensorContent()}.values()
		if err != nil {
			t.Fatalf("gRPC output %s: %v", name, err)
		}
		got := make([]float32, len(vals))
		for i, v := range vals {
			got[i] = float32(v)
		}
		if !closeEnough(got, want(name), 1e-6) {
			t.Errorf("gRPC %s = %v, TensorFlow %v", name, got, want(name))
		}
	}

	// The metadata lists both signatures (and no emotions.json: there is none).
	var meta struct {
		Metadata struct {
			SignatureDef struct {
				SignatureDef map[string]json.RawMessage `json:"signature_def"`
			} `json:"signature_def"`
			Emotions json.RawMessage `json:"emotions"`
		}
	}
	if code, resp := call(t, "GET", ts.url+"/metadata", "", nil, &meta); code != http.StatusOK {
		t.Fatalf("metadata: %d %s", code, resp)
	}
	if got := sortedKeys(meta.Metadata.SignatureDef.SignatureDef); strings.Join(got, ",") != "serve,serving_default" || meta.Metadata.Emotions != nil {
		t.Errorf("metadata lists signatures %v and emotions %s, want serve,serving_default and none", got, meta.Metadata.Emotions)
	}
	var status struct {
		ModelVersionStatus []struct{ Version, State string } `json:"model_version_status"`
	}
	if code, resp := call(t, "GET", ts.url, "", nil, &status); code != http.StatusOK || len(status.ModelVersionStatus) != 1 || status.ModelVersionStatus[0].State != "AVAILABLE" {
		t.Errorf("status: %d %s, want version 1 AVAILABLE", code, resp)
	}

	// No metadata to make a photo into its input: a clear 400, not a guess.
	code, resp2 := call(t, "POST", ts.url+":classify_image", "image/jpeg", []byte("\xff\xd8\xff"), nil)
	wantError(t, ":classify_image without emotions.json", code, resp2, http.StatusBadRequest, "no image preprocessing metadata")
}

// A tf.saved_model.save of a tf.Module with a string signature: strings in as JSON strings,
// {"b64": ...} and gRPC string_val, strings out; warmed up without a warm-up file.
func TestServeStringSavedModel(t *testing.T) {
	dir := t.TempDir()
	testutil.RunPython(t, filepath.Join("testdata", "any_savedmodel.py"), dir)
	cfg := DefaultConfig()
	cfg.ModelDir = filepath.Join(dir, "text")
	ts := startServer(t, cfg)

	body := []byte(`{"instances": ["ab", {"b64": "` + base64.StdEncoding.EncodeToString([]byte("héllo")) + `"}, ""]}`)
	var rows struct {
		Predictions []struct {
			Length int64
			Upper  string
		}
	}
	if code, resp := call(t, "POST", ts.url+":predict", "application/json", body, &rows); code != http.StatusOK {
		t.Fatalf("row predict: %d %s", code, resp)
	}
	got, _ := json.Marshal(rows.Predictions)
	// tf.strings.upper changes ASCII only; length counts bytes.
	if want := `[{"Length":2,"Upper":"AB"},{"Length":6,"Upper":"HéLLO"},{"Length":0,"Upper":""}]`; string(got) != want {
		t.Errorf("row predict = %s, want %s", got, want)
	}

	var cols struct{ Outputs map[string]json.RawMessage }
	if code, resp := call(t, "POST", ts.url+":predict", "application/json", []byte(`{"inputs": {"text": ["x", "yz"]}}`), &cols); code != http.StatusOK {
		t.Fatalf("columnar predict: %d %s", code, resp)
	}
	if string(cols.Outputs["length"]) != "[1,2]" || string(cols.Outputs["upper"]) != `["X","YZ"]` {
		t.Errorf("columnar predict = %v", cols.Outputs)
	}

	in := &tensorpb.TensorProto{Dtype: typespb.DataType_DT_STRING, StringVal: [][]byte{[]byte("abc"), {0xff, 'q'}},
		TensorShape: &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: 2}}}}
	resp, err := grpcPredict(dialGRPC(t, ts.grpc), predictRequest("emo", map[string]*tensorpb.TensorProto{"text": in}))
	if err != nil {
		t.Fatalf("gRPC Predict: %v", err)
	}
	up := resp.GetOutputs()["upper"].GetStringVal()
	if len(up) != 2 || string(up[0]) != "ABC" || string(up[1]) != "\xffQ" {
		t.Errorf("gRPC upper = %q, want ABC and \\xffQ", up)
	}

	for _, c := range []struct{ body, wantIn string }{
		{`{"instances": [1]}`, "string input"},
		{`{"instances": [{"b64": "***"}]}`, "b64"},
		{`{"instances": [{"text": "a", "other": "b"}]}`, "other"},
	} {
		code, resp := call(t, "POST", ts.url+":predict", "application/json", []byte(c.body), nil)
		wantError(t, c.body, code, resp, http.StatusBadRequest, c.wantIn)
	}
}
