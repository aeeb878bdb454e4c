package arrays_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/emotions-dev/emotions/arrays"
)

// A Go program reads data saved with np.savez(path, x=x, y=y), where NumPy's defaults make x
// float64 and y int64, and casts them to what a model takes, as Keras' fit would.
func ExampleReadNPZ() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "data.npz")

	// Here the archive comes from WriteNPZ; np.savez writes the same.
	x, _ := arrays.Of([]float64{0.5, 1.5, 2.5, 3.5, 4.5, 5.5}, 3, 2)
	y, _ := arrays.Of([]int64{0, 1, 0})
	if err := arrays.WriteNPZ(path, map[string]arrays.Array{"x": x, "y": y}); err != nil {
		log.Fatal(err)
	}

	data, err := arrays.ReadNPZ(path, arrays.Limits{}) // at most DefaultMaxBytes
	if err != nil {
		log.Fatal(err)
	}
	x32, err := arrays.Convert(data["x"], arrays.Float32)
	if err != nil {
		log.Fatal(err)
	}
	y32, err := arrays.Convert(data["y"], arrays.Int32)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(data["x"].DType, "->", x32.DType, arrays.ShapeString(x32.Shape), x32.Values)
	fmt.Println(data["y"].DType, "->", y32.DType, arrays.ShapeString(y32.Shape), y32.Values)
	// Output:
	// float64 -> float32 [3 2] [0.5 1.5 2.5 3.5 4.5 5.5]
	// int64 -> int32 [3] [0 1 0]
}
