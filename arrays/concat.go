package arrays

import "fmt"

// Concat joins arrays of one dtype and the same shape after the first dimension along their
// rows (a model's outputs batch by batch into one array).
func Concat(parts []Array) (Array, error) {
	if len(parts) == 0 {
		return Array{}, fmt.Errorf("nothing to concatenate")
	}
	first := parts[0]
	if len(first.Shape) == 0 {
		return Array{}, fmt.Errorf("cannot concatenate scalars")
	}
	rows := int64(0)
	for i, p := range parts {
		if err := p.Check(); err != nil {
			return Array{}, fmt.Errorf("part %d: %w", i, err)
		}
		if p.DType != first.DType || len(p.Shape) != len(first.Shape) || ShapeString(p.Shape[1:]) != ShapeString(first.Shape[1:]) {
			return Array{}, fmt.Errorf("part %d is %s %s, part 0 %s %s", i, p.DType, ShapeString(p.Shape), first.DType, ShapeString(first.Shape))
		}
		rows += p.Rows()
	}
	out := Array{DType: first.DType, Shape: append([]int64{rows}, first.Shape[1:]...)}
	switch first.Values.(type) {
	case []float32:
		out.Values = concat[float32](parts)
	case []float64:
		out.Values = concat[float64](parts)
	case []int8:
		out.Values = concat[int8](parts)
	case []int16:
		out.Values = concat[int16](parts)
	case []int32:
		out.Values = concat[int32](parts)
	case []int64:
		out.Values = concat[int64](parts)
	case []uint8:
		out.Values = concat[uint8](parts)
	case []uint16:
		out.Values = concat[uint16](parts)
	case []bool:
		out.Values = concat[bool](parts)
	case []string:
		out.Values = concat[string](parts)
	}
	return out, nil
}

func concat[T any](parts []Array) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p.Values.([]T)...)
	}
	return out
}
