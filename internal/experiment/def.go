// Package experiment (project tooling, not a public API) runs the experiment definitions in experiments/defs/NAME.json: each is a
// list of CLI steps (new-model, train, ...) that the runner executes with the emotions binary
// itself, so what is measured is exactly what users run. The best model of the last train step
// is then evaluated on the data's train, valid and test splits, and one row is appended to
// experiments/RESULTS.md. The package is pure Go (no cgo): it only drives subprocesses.
package experiment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Def is one experiment definition.
type Def struct {
	Name        string `json:"-"`
	Description string `json:"description"`
	// Kind picks the RESULTS.md table the row goes to (seed, backbones, levers, smoke).
	Kind string `json:"kind"`
	// Notes are printed into the row's settings (e.g. "random init: ImageNet weights not used").
	Notes string `json:"notes,omitempty"`
	// Data is the dataset with train/, valid/ and test/ class folders, relative to the repo
	// root; ${data} in step flags.
	Data string `json:"data"`
	// EvaluateOn is the split the headline test accuracy is measured on (default test).
	EvaluateOn string `json:"evaluate_on,omitempty"`
	// EvaluateData is where the row's train and valid figures come from when the steps
	// re-split the data (a ${STEP} of a split step with "test"); default ${data}. Its
	// EvaluateOn split must hold the same files as ${data}'s, which the runner checks, so the
	// headline figure stays the one on ${data}.
	EvaluateData string `json:"evaluate_data,omitempty"`
	// Paths are further directories steps refer to as ${name}: a path relative to the repo
	// root, overridable by the environment variable Env (for data outside the repository).
	Paths map[string]PathRef `json:"paths,omitempty"`
	Steps []Step             `json:"steps"`
}

// PathRef is a named directory with an environment override.
type PathRef struct {
	Path string `json:"path"`
	Env  string `json:"env,omitempty"`
}

// Step is one CLI command: {"name": "pretrain", "train": {"epochs": 5, ...}}. Flags map to
// --flag value (true: --flag alone; false: omitted). String values may refer to ${data}, a
// path of Paths, ${run} (this run's directory) or ${STEP} (the --out of an earlier step).
// Env sets environment variables for that step only: {"name": ..., "env": {"K": "V"}, ...}.
type Step struct {
	Name    string
	Command string
	Flags   map[string]any
	Env     map[string]string
}

// stepCommands are the commands a definition may run; new-model, train, split and python get
// --out RUN/<step name> unless the definition sets it. split (see split.go) runs in-process:
// {"split": {"from": "${pretrain}", "valid-percent": 10}}. python runs a script of the
// repository with the project's interpreter (EMOTIONS_PYTHON, else .venv/bin/python):
// {"python": {"script": "experiments/peers/x.py", "args": "sub", "npz": "${crops}"}} runs
// `python experiments/peers/x.py sub --npz RUN/crops ...` in the repo root; "args" (optional)
// are positional words before the flags, split on spaces.
var stepCommands = []string{"new-model", "train", "evaluate", "preprocess", "split", "python"}

// splitKeys are the keys a split step accepts (see splitSpec).
var splitKeys = []string{"from", "valid-percent", "train", "test", "out"}

// UnmarshalJSON reads {"name": ..., "<command>": {flags}}.
func (s *Step) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for k, v := range raw {
		if k == "name" {
			if err := json.Unmarshal(v, &s.Name); err != nil {
				return fmt.Errorf("step name: %w", err)
			}
			continue
		}
		if k == "env" {
			if err := json.Unmarshal(v, &s.Env); err != nil {
				return fmt.Errorf("step env (want {\"NAME\": \"value\"}): %w", err)
			}
			continue
		}
		if !slices.Contains(stepCommands, k) {
			return fmt.Errorf("step key %q: want name or one of %s", k, strings.Join(stepCommands, ", "))
		}
		if s.Command != "" {
			return fmt.Errorf("step has two commands (%s and %s): split it", s.Command, k)
		}
		s.Command = k
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber() // keep 1e-3 and 64 exactly as written
		if err := dec.Decode(&s.Flags); err != nil {
			return fmt.Errorf("%s flags: %w", k, err)
		}
	}
	if s.Command == "" {
		return fmt.Errorf("step without a command (want one of %s)", strings.Join(stepCommands, ", "))
	}
	if s.Command == "split" {
		for k := range s.Flags {
			if !slices.Contains(splitKeys, k) {
				return fmt.Errorf("split: unknown key %q (want %s)", k, strings.Join(splitKeys, ", "))
			}
		}
		// Checked here, not when the step runs: it may come after hours of other steps.
		if s.Flags["from"] == nil || s.Flags["valid-percent"] == nil {
			return fmt.Errorf("split: \"from\" and \"valid-percent\" are required")
		}
	}
	if s.Command == "python" {
		if script, ok := s.Flags["script"].(string); !ok || script == "" {
			return fmt.Errorf("python step: \"script\" (a path in the repository) is required")
		}
	}
	return nil
}

// MarshalJSON writes the same shape back (for the run's experiment.json).
func (s Step) MarshalJSON() ([]byte, error) {
	m := map[string]any{"name": s.Name, s.Command: s.Flags}
	if len(s.Env) > 0 {
		m["env"] = s.Env
	}
	return json.Marshal(m)
}

// DefsDir is where definitions live, relative to the repo root.
const DefsDir = "experiments/defs"

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// Load reads root/experiments/defs/NAME.json and checks it.
func Load(root, name string) (*Def, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("experiment name %q: use lower-case letters, digits, '.', '_' and '-'", name)
	}
	path := filepath.Join(root, DefsDir, name+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("no experiment %q: %s does not exist (see `emotions experiment list`)", name, path)
		}
		return nil, err
	}
	var d Def
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.Name = name
	if err := d.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

func (d *Def) check() error {
	if d.Data == "" {
		return fmt.Errorf("data is required (a directory with train/, valid/ and test/)")
	}
	if d.EvaluateOn == "" {
		d.EvaluateOn = "test"
	}
	if d.Kind == "" {
		d.Kind = "other"
	}
	if len(d.Steps) == 0 {
		return fmt.Errorf("no steps")
	}
	seen := map[string]bool{"data": true, "run": true}
	for k := range d.Paths {
		if seen[k] {
			return fmt.Errorf("path name %q is reserved or repeated", k)
		}
		seen[k] = true
	}
	trains := 0
	for i := range d.Steps {
		s := &d.Steps[i]
		if s.Name == "" {
			s.Name = fmt.Sprintf("step%d-%s", i+1, s.Command)
		}
		if !nameRE.MatchString(s.Name) || seen[s.Name] {
			return fmt.Errorf("step %d: name %q is invalid or already used", i+1, s.Name)
		}
		seen[s.Name] = true
		if s.Command == "train" {
			trains++
		}
	}
	if trains == 0 {
		return fmt.Errorf("no train step: nothing to evaluate")
	}
	if d.EvaluateData != "" {
		m := refRE.FindStringSubmatch(d.EvaluateData)
		ok := m != nil && m[0] == d.EvaluateData
		if ok {
			i := slices.IndexFunc(d.Steps, func(s Step) bool { return s.Name == m[1] })
			ok = i >= 0 && d.Steps[i].Command == "split" && d.Steps[i].Flags["test"] != nil
		}
		if !ok {
			return fmt.Errorf("evaluate_data %q: want ${STEP} naming a split step with \"test\"", d.EvaluateData)
		}
	}
	return nil
}

// List returns the definitions under root, sorted by name.
func List(root string) ([]*Def, error) {
	paths, err := filepath.Glob(filepath.Join(root, DefsDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var defs []*Def
	for _, p := range paths {
		d, err := Load(root, strings.TrimSuffix(filepath.Base(p), ".json"))
		if err != nil {
			return nil, err
		}
		defs = append(defs, d)
	}
	return defs, nil
}

var refRE = regexp.MustCompile(`\$\{([a-zA-Z0-9._-]+)\}`)

// expand replaces ${name} references; an unknown name is an error (a typo would otherwise
// reach the CLI as a literal path).
func expand(s string, vars map[string]string) (string, error) {
	var bad []string
	out := refRE.ReplaceAllStringFunc(s, func(m string) string {
		k := refRE.FindStringSubmatch(m)[1]
		v, ok := vars[k]
		if !ok {
			bad = append(bad, k)
		}
		return v
	})
	if len(bad) > 0 {
		return "", fmt.Errorf("unknown reference ${%s} in %q", bad[0], s)
	}
	return out, nil
}

// args turns a step's flags into CLI arguments, sorted by flag name for stable command lines.
func (s Step) args(vars map[string]string) ([]string, error) {
	keys := make([]string, 0, len(s.Flags))
	for k := range s.Flags {
		if s.Command == "python" && (k == "script" || k == "args") {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{s.Command}
	if s.Command == "python" {
		// python SCRIPT [ARGS...] --flags: the runner swaps "python" for the interpreter.
		args = append(args, fmt.Sprint(s.Flags["script"]))
		if a, ok := s.Flags["args"].(string); ok {
			for _, w := range strings.Fields(a) {
				e, err := expand(w, vars)
				if err != nil {
					return nil, fmt.Errorf("step %s args: %w", s.Name, err)
				}
				args = append(args, e)
			}
		}
	}
	for _, k := range keys {
		switch v := s.Flags[k].(type) {
		case bool:
			if v {
				args = append(args, "--"+k)
			}
		case json.Number:
			args = append(args, "--"+k, v.String())
		case string:
			e, err := expand(v, vars)
			if err != nil {
				return nil, fmt.Errorf("step %s flag --%s: %w", s.Name, k, err)
			}
			args = append(args, "--"+k, e)
		case float64: // a Step built in Go rather than decoded
			args = append(args, "--"+k, strconv.FormatFloat(v, 'g', -1, 64))
		case int:
			args = append(args, "--"+k, strconv.Itoa(v))
		default:
			return nil, fmt.Errorf("step %s flag --%s: value %v: want a string, number or boolean", s.Name, k, v)
		}
	}
	return args, nil
}

// summary renders the step's settings for RESULTS.md: every flag as written in the
// definition (references unexpanded, so rows do not depend on the machine) except the
// input and output directories, which every step has.
func (s Step) summary() string {
	hidden := []string{"out", "data", "model", "train", "valid"}
	if s.Command == "split" {
		hidden = []string{"out"} // a split's train and test folders are what it does
	}
	keys := make([]string, 0, len(s.Flags))
	for k := range s.Flags {
		if !slices.Contains(hidden, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := []string{s.Command}
	for _, k := range keys {
		if b, ok := s.Flags[k].(bool); ok {
			if b {
				parts = append(parts, k)
			}
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, s.Flags[k]))
	}
	envKeys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		envKeys = append(envKeys, k)
	}
	sort.Strings(envKeys)
	for _, k := range envKeys {
		parts = append(parts, fmt.Sprintf("env %s=%s", k, s.Env[k]))
	}
	return strings.Join(parts, " ")
}
