package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/tfgraph"
)

func newModelCommand() *cli.Command {
	return &cli.Command{
		Name:  "new-model",
		Usage: "export a new Keras model (the seed's InceptionResNetV2 head, another backbone, or your own .keras) as a trainable SavedModel",
		Description: "Runs savedmodel/export.py in the project's venv. The model directory holds the training SavedModel\n" +
			"(serve, train_step, evaluate, set_learning_rate signatures), emotions.json (input shape, classes,\n" +
			"normalisation) and the serving graph (no weights) `emotions export` builds serving exports from.\n" +
			"InceptionResNetV2 takes about half a minute; an identical new-model is a hard-linked copy from --model-cache.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "directory to create (must not exist)"},
			&cli.StringFlag{Name: "backbone", Value: "inception_resnet_v2", Usage: "inception_resnet_v2 (the seed's), vgg16, resnet50, resnet101, or tiny (a small CNN for tests)"},
			&cli.StringFlag{Name: "weights", Value: "none", Usage: "none (random init), imagenet (Keras downloads them: needs network), a .h5/.keras file of backbone weights, or an emotions model directory to copy matching weights from (e.g. a pre-training run's best/; output units go by class name: shared classes keep theirs, new ones start fresh)"},
			&cli.StringFlag{Name: "from", Usage: "wrap your own compiled Keras 3 model (.keras) instead of building one: as it was compiled (any inputs, outputs, losses and metrics; train/evaluate/predict then take .npz arrays), or with --classes as an image classifier for the face pipeline (one (H,W,1) or (H,W,3) image input, a softmax or logits output)"},
			&cli.BoolFlag{Name: "generic", Usage: "--from: export the model as it was compiled (the default without --classes)"},
			&cli.StringFlag{Name: "custom-module", Usage: "--from: a Python module `NAME` to import first, where your losses, metrics and layers are registered with keras.saving.register_keras_serializable (from the current directory or PYTHONPATH)"},
			&cli.StringFlag{Name: "output", Value: "auto", Usage: "what a --from model outputs: auto (its last activation and compiled loss tell), probabilities, logits"},
			&cli.IntFlag{Name: "input-size", Value: 80, Usage: "square input size in pixels (the seed's 80)"},
			&cli.StringFlag{Name: "classes", Value: "angry,happy,normal,sad", Usage: "class names in output order, comma-separated"},
			&cli.IntFlag{Name: "seed", Value: 0, Usage: "initialisation and Dropout seed"},
			&cli.Float64Flag{Name: "learning-rate", Value: 1e-3, Usage: "Adam's initial learning rate"},
			&cli.StringFlag{Name: "crop", Value: "face", Usage: "how photos become the model's input, recorded in emotions.json for train, predict and serve: face (around the detected face), center (the largest centred crop: a model of other things than faces) or none (the whole photo resized)"},
			&cli.StringFlag{Name: "normalization", Value: "rescale", Usage: "pixel normalisation: rescale ([0,1], the seed's), tf ([-1,1]), caffe, torch, mean_std (with --mean and --std), or backbone (the backbone's own preprocess_input)"},
			&cli.StringFlag{Name: "mean", Usage: "mean_std: 1 or 3 comma-separated channel means in [0,1] pixel units (x = (p/255 - mean)/std)"},
			&cli.StringFlag{Name: "std", Usage: "mean_std: 1 or 3 comma-separated channel standard deviations in [0,1] pixel units"},
			&cli.Float64Flag{Name: "dropout", Value: 0.5, Usage: "Dropout rate of the head"},
			&cli.IntFlag{Name: "dense", Value: 64, Usage: "units of the head's Dense(relu) layer"},
			&cli.StringFlag{Name: "export-xla", Value: "auto", Usage: "also export an XLA-compiled train step: auto (when this machine has a GPU, as Keras' jit_compile=\"auto\"), on, off"},
			&cli.BoolFlag{Name: "no-xla", Usage: "same as --export-xla off"},
			&cli.StringFlag{Name: "mixed-precision", Value: "none", Usage: "Keras dtype policy: none (float32), mixed_float16 (float16 compute with Keras' dynamic loss scaling: GPUs with tensor cores) or mixed_bfloat16 (bfloat16 compute: TPUs, recent GPUs, CPUs with AVX512_BF16/AMX); variables and outputs stay float32"},
			&cli.IntFlag{Name: "loss-scale-growth-steps", Value: 2000, Usage: "mixed_float16: steps with finite gradients before the loss scale doubles (Keras' LossScaleOptimizer dynamic_growth_steps)"},
			&cli.StringFlag{Name: "replicas", Value: "auto", Usage: "also export the train step as `N` towers, one per device (train --replicas N, as Keras' MirroredStrategy): auto (the GPUs this machine has), or a number (1: none)"},
			&cli.StringFlag{Name: "model-cache", EnvVars: []string{"EMOTIONS_MODEL_CACHE"}, Value: savedmodel.DefaultModelCache(), Usage: "cache of exports: an identical new-model is a hard-linked copy; empty to disable"},
			&cli.BoolFlag{Name: "no-cache", Usage: "export anew, without reading or filling --model-cache"},
		},
		Action: func(c *cli.Context) error {
			if c.String("from") != "" && (c.Bool("generic") || !c.IsSet("classes")) {
				return newGenericModel(c)
			}
			if c.Bool("generic") || c.IsSet("custom-module") {
				return usageError("--generic and --custom-module wrap a model given with --from (without --classes)")
			}
			args := []string{"--out", c.String("out"), "--backbone", c.String("backbone"), "--weights", c.String("weights"),
				"--input-size", strconv.Itoa(c.Int("input-size")), "--classes", c.String("classes"),
				"--seed", strconv.Itoa(c.Int("seed")), "--learning-rate", strconv.FormatFloat(c.Float64("learning-rate"), 'g', -1, 64),
				"--normalization", c.String("normalization"), "--crop", c.String("crop"), "--dropout", strconv.FormatFloat(c.Float64("dropout"), 'g', -1, 64),
				"--dense", strconv.Itoa(c.Int("dense")), "--output", c.String("output"),
				"--mixed-precision", c.String("mixed-precision"), "--loss-scale-growth-steps", strconv.Itoa(c.Int("loss-scale-growth-steps")),
				"--replicas", c.String("replicas")}
			if f := c.String("from"); f != "" {
				args = append(args, "--from", f)
			}
			for _, name := range []string{"mean", "std"} {
				if v := c.String(name); v != "" {
					args = append(args, "--"+name, v)
				}
			}
			if cache := c.String("model-cache"); cache != "" && !c.Bool("no-cache") {
				args = append(args, "--cache", cache)
			}
			args = append(args, "--xla", c.String("export-xla"))
			if c.Bool("no-xla") {
				args = append(args, "--no-xla")
			}
			if c.String("backbone") == "inception_resnet_v2" && c.String("from") == "" {
				fmt.Fprintln(os.Stderr, "building InceptionResNetV2: this takes about half a minute and ~2.5 GB of memory")
			}
			if err := savedmodel.Export(args, os.Stderr); err != nil {
				return err
			}
			fmt.Println(c.String("out"))
			return nil
		},
	}
}

// newGenericModel is new-model --from model.keras without --classes: the model exported as it
// was compiled (export.py --generic). The image classifier's flags do not apply; the exporter's
// own refusals (mixed precision, replicas, XLA, --output) come back all at once with its others.
func newGenericModel(c *cli.Context) error {
	var image []string
	for _, name := range []string{"backbone", "input-size", "seed", "learning-rate", "normalization", "mean", "std", "dropout", "dense", "crop"} {
		if c.IsSet(name) {
			image = append(image, "--"+name)
		}
	}
	if c.Bool("generic") && c.IsSet("classes") {
		image = append(image, "--classes")
	}
	if len(image) > 0 {
		return usageError("%s: for the image classifier, not a model exported as compiled (--from without --classes): "+
			"its own layers, optimizer and learning rate are kept (train --learning-rate sets another)", strings.Join(image, ", "))
	}
	args := []string{"--out", c.String("out"), "--from", c.String("from"), "--generic"}
	if m := c.String("custom-module"); m != "" {
		args = append(args, "--custom-module", m)
	}
	for _, name := range []string{"output", "mixed-precision", "replicas", "weights"} {
		if c.IsSet(name) {
			args = append(args, "--"+name, c.String(name))
		}
	}
	if c.Bool("no-xla") {
		args = append(args, "--xla", "off")
	} else if c.IsSet("export-xla") {
		args = append(args, "--xla", c.String("export-xla"))
	}
	if cache := c.String("model-cache"); cache != "" && !c.Bool("no-cache") {
		args = append(args, "--cache", cache)
	}
	if err := savedmodel.Export(args, os.Stderr); err != nil {
		return err
	}
	fmt.Println(c.String("out"))
	return nil
}

// modelInfo is `emotions info --json`.
type modelInfo struct {
	Dir               string                   `json:"dir"`
	Backbone          string                   `json:"backbone"`
	Weights           string                   `json:"weights"`
	InputSize         int                      `json:"input_size,omitempty"` // square models only
	InputHeight       int                      `json:"input_height"`
	InputWidth        int                      `json:"input_width"`
	Channels          int                      `json:"channels"`
	Output            string                   `json:"output"` // probabilities or logits (serve returns probabilities either way)
	Classes           []string                 `json:"classes"`
	Normalization     savedmodel.Normalization `json:"normalization"`
	Params            int64                    `json:"params"`
	Signatures        map[string]signatureInfo `json:"signatures"`
	TrainSignature    string                   `json:"train_signature"`
	LearningRate      float64                  `json:"learning_rate"`
	Iterations        int64                    `json:"iterations"`
	TensorFlow        string                   `json:"tensorflow_version"`
	ExportTensorFlow  string                   `json:"export_tensorflow_version"`
	KerasVersion      string                   `json:"keras_version"`
	Devices           []string                 `json:"devices"`
	GPU               gpuInfo                  `json:"gpu"`
	ServingOnlyExport bool                     `json:"serving_export_available"`
	MixedPrecision    string                   `json:"mixed_precision,omitempty"` // the Keras dtype policy, when not float32
	// A model exported as compiled (Kind "generic") is described by these instead of the image
	// fields above.
	Kind      string              `json:"kind,omitempty"`
	Optimizer string              `json:"optimizer,omitempty"`
	Source    string              `json:"source,omitempty"`
	Inputs    []savedmodel.Tensor `json:"inputs,omitempty"`
	Outputs   []savedmodel.Tensor `json:"outputs,omitempty"`
	Targets   []savedmodel.Tensor `json:"targets,omitempty"`
	Losses    []savedmodel.Loss   `json:"losses,omitempty"`
	Logs      []savedmodel.Log    `json:"logs,omitempty"`
	Monitor   map[string]string   `json:"monitor,omitempty"`
}

type signatureInfo struct {
	Inputs  map[string]tensorInfo `json:"inputs"`
	Outputs map[string]tensorInfo `json:"outputs"`
}

type tensorInfo struct {
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "describe a model: signatures, classes, input size, normalisation, TensorFlow version, devices",
		ArgsUsage: "MODEL_DIR",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("info takes one model directory, got %d arguments", c.NArg())
			}
			m, err := openModel(c, c.Args().First())
			if err != nil {
				return err
			}
			defer m.Close()
			info := describe(m)
			if c.Bool("json") {
				return printJSON(info)
			}
			printInfo(info)
			return nil
		},
	}
}

func describe(m *tfgraph.Model) modelInfo {
	info := modelInfo{
		Dir: m.Dir, Backbone: m.Meta.Backbone, Weights: m.Meta.Weights, InputSize: m.Meta.InputSize,
		InputHeight: m.Meta.InputHeight, InputWidth: m.Meta.InputWidth, Channels: m.Meta.Channels, Output: m.Meta.Output,
		Classes: m.Meta.Classes, Normalization: m.Meta.Normalization, Params: m.Meta.Params,
		Signatures: map[string]signatureInfo{}, TrainSignature: m.TrainSignature(),
		TensorFlow: tfgraph.Version(), ExportTensorFlow: m.Meta.TFVersion, KerasVersion: m.Meta.KerasVersion,
		Devices: m.Devices(), GPU: describeGPU(m), ServingOnlyExport: m.Meta.Serving != nil,
		MixedPrecision: m.Meta.MixedPrecision,
	}
	for _, name := range m.SignatureNames() {
		sig, _ := m.Signature(name)
		si := signatureInfo{Inputs: map[string]tensorInfo{}, Outputs: map[string]tensorInfo{}}
		for k, v := range sig.Inputs {
			shape, _ := v.Shape.ToSlice()
			si.Inputs[k] = tensorInfo{DType: tfgraph.DTypeName(v.DType), Shape: shape}
		}
		for k, v := range sig.Outputs {
			shape, _ := v.Shape.ToSlice()
			si.Outputs[k] = tensorInfo{DType: tfgraph.DTypeName(v.DType), Shape: shape}
		}
		info.Signatures[name] = si
	}
	if st, err := m.State(); err == nil {
		info.LearningRate, info.Iterations = st.LearningRate, st.Iterations
	}
	if m.Generic() {
		info.Kind, info.Optimizer, info.Source = m.Meta.Kind, m.Meta.Optimizer, m.Meta.Source
		info.Inputs, info.Outputs, info.Targets = m.Meta.Inputs, m.Meta.Outputs, m.Meta.Targets
		info.Losses, info.Logs, info.Monitor = m.Meta.Losses, m.Meta.Logs, m.Meta.Monitor
	}
	return info
}

// printGenericHead is info's head for a model exported as compiled: its tensors, losses and
// logs instead of an image input and classes.
func printGenericHead(info modelInfo) {
	fmt.Printf("kind        a compiled Keras model, exported as compiled (%s; %d parameters)\n", info.Source, info.Params)
	specs := func(ts []savedmodel.Tensor) string {
		parts := make([]string, len(ts))
		for i, t := range ts {
			parts[i] = fmt.Sprintf("%s %s%v", t.Name, t.DType, t.Shape)
		}
		return strings.Join(parts, ", ")
	}
	fmt.Printf("inputs      %s\n", specs(info.Inputs))
	fmt.Printf("outputs     %s\n", specs(info.Outputs))
	fmt.Printf("targets     %s (name the .npz arrays so; sample_weight optional)\n", specs(info.Targets))
	for _, l := range info.Losses {
		fmt.Printf("loss        %s: %s, weight %g\n", l.Output, l.Loss, l.Weight)
	}
	logs := make([]string, len(info.Logs))
	for i, l := range info.Logs {
		logs[i] = l.Name
		if d := info.Monitor[l.Name]; d != "" {
			logs[i] += " (" + d + ")"
		}
	}
	fmt.Printf("logs        %s, and each with val_ (auto mode's direction in parentheses)\n", strings.Join(logs, ", "))
	fmt.Printf("optimizer   %s, learning rate %.6g after %d steps\n", info.Optimizer, info.LearningRate, info.Iterations)
}

func printInfo(info modelInfo) {
	fmt.Printf("model       %s\n", info.Dir)
	if info.Kind != "" {
		printGenericHead(info)
		printRuntime(info)
		return
	}
	fmt.Printf("backbone    %s (weights: %s, %d parameters)\n", info.Backbone, info.Weights, info.Params)
	color := "RGB"
	if info.Channels == 1 {
		color = "grayscale"
	}
	fmt.Printf("input       %dx%dx%d (%s, height x width x channels), normalisation %s; the model outputs %s\n",
		info.InputHeight, info.InputWidth, info.Channels, color, info.Normalization.Mode, info.Output)
	fmt.Printf("classes     %s\n", strings.Join(info.Classes, ", "))
	if info.MixedPrecision != "" {
		fmt.Printf("precision   %s (float32 variables and outputs)\n", info.MixedPrecision)
	}
	fmt.Printf("optimizer   learning rate %.6g after %d steps; train signature %s\n", info.LearningRate, info.Iterations, info.TrainSignature)
	printRuntime(info)
}

// printRuntime is info's tail: versions, devices and signatures.
func printRuntime(info modelInfo) {
	fmt.Printf("tensorflow  %s (exported with TF %s, Keras %s)\n", info.TensorFlow, info.ExportTensorFlow, info.KerasVersion)
	fmt.Printf("devices     %s\n", strings.Join(info.Devices, ", "))
	fmt.Printf("gpu         %s\n", info.GPU)
	names := make([]string, 0, len(info.Signatures))
	for n := range info.Signatures {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Println("signatures")
	for _, n := range names {
		s := info.Signatures[n]
		fmt.Printf("  %-18s (%s) -> (%s)\n", n, tensorList(s.Inputs), tensorList(s.Outputs))
	}
}

func tensorList(ts map[string]tensorInfo) string {
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %s%v", n, ts[n].DType, ts[n].Shape)
	}
	return strings.Join(parts, ", ")
}
