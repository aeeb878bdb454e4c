package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.Main(m)) }

// The example labels a photo, names the file it cannot read, and predicts on a tensor.
func TestPredictExample(t *testing.T) {
	photo := filepath.Join(testutil.RepoRoot(t), "data", "faces4", "test", "sad", "Alain_Cervantes_0001.jpg")
	var out strings.Builder
	if err := run(context.Background(), testutil.TinyModel(t), []string{photo, "missing.jpg"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^` + regexp.QuoteMeta(photo) + `: (angry|happy|normal|sad) \(0\.\d\d\)$`),
		regexp.MustCompile(`^missing\.jpg: missing\.jpg: .*no such file`),
		regexp.MustCompile(`^a gray 80x80x3 tensor: angry 0\.\d\d, happy 0\.\d\d, normal 0\.\d\d, sad 0\.\d\d$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", out.String())
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i, lines[i], re)
		}
	}
}
