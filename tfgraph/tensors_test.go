package tfgraph

import (
	"fmt"
	"testing"
)

// String tensors of any rank keep their elements, bytes and order.
func TestStringTensorRoundTrip(t *testing.T) {
	for _, c := range []struct {
		vals  []string
		shape []int64
	}{
		{[]string{"a"}, nil},
		{[]string{"a", "", "\xff\x00b"}, []int64{3}},
		{[]string{"a", "b", "c", "d", "e", "f"}, []int64{2, 1, 3}},
	} {
		tt, err := StringTensor(c.vals, c.shape...)
		if err != nil {
			t.Fatalf("StringTensor(%q, %v): %v", c.vals, c.shape, err)
		}
		got, err := Strings(tt)
		if err != nil || fmt.Sprint(tt.Shape()) != fmt.Sprint(c.shape) || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.vals) {
			t.Errorf("StringTensor(%q, %v) = %v %q (%v)", c.vals, c.shape, tt.Shape(), got, err)
		}
	}
	if _, err := StringTensor([]string{"a"}, 2); err == nil {
		t.Error("StringTensor took 1 string for shape [2]")
	}
}
