package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/emotions-dev/emotions"

// deps lists the packages pkg imports, directly or not.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestDependencyRules(t *testing.T) {
	// Where each library package may not reach: nothing imports the CLI or the project's
	// tooling; earlier stages of the data path never import later ones; the packages a Go
	// program imports to train or predict pull in no plotting and no progress bars.
	never := []string{module + "/cmd/", module + "/internal/experiment", module + "/internal/termui", module + "/examples/"}
	heavy := []string{"gonum.org/v1/plot", "github.com/schollz/progressbar", module + "/plots"}
	rules := map[string][]string{
		"arrays":     {module + "/savedmodel", module + "/preprocess", module + "/tfgraph", module + "/train", module + "/recipe", module + "/classify", module + "/tfserving"},
		"savedmodel": {module + "/preprocess", module + "/tfgraph", module + "/train", module + "/recipe", module + "/classify", module + "/tfserving"},
		"preprocess": {module + "/tfgraph", module + "/train", module + "/recipe", module + "/classify", module + "/tfserving"},
		"tfgraph":    {module + "/preprocess", module + "/train", module + "/recipe", module + "/classify", module + "/tfserving"},
		"classify":   {module + "/train", module + "/recipe", module + "/tfserving"},
		// The loop knows nothing of images: the image pipeline (recipe, preprocess, classify)
		// is one user of it.
		"train":     {module + "/preprocess", module + "/classify", module + "/recipe", module + "/tfserving"},
		"recipe":    {module + "/tfserving"},
		"tfserving": {module + "/train", module + "/recipe"},
		"plots":     {module + "/tfserving"},
	}
	for pkg, forbidden := range rules {
		if pkg != "plots" {
			forbidden = append(forbidden, heavy...)
		}
		forbidden = append(forbidden, never...)
		for _, d := range deps(t, pkg) {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)) {
					t.Errorf("%s imports %s", pkg, d)
				}
			}
		}
	}
}
