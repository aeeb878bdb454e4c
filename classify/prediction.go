package classify

import "github.com/emotions-dev/emotions/preprocess"

// Prediction is the JSON object `emotions predict` prints per image and :classify_image
// returns: absent values are null, never missing keys.
type Prediction struct {
	File          string             `json:"file"`
	Label         *string            `json:"label"`
	Probabilities map[string]float32 `json:"probabilities"`
	Face          *Face              `json:"face"`
	Error         *string            `json:"error"`
}

// Face is the detected face box in the original image's pixels.
type Face struct {
	X      int     `json:"x"`
	Y      int     `json:"y"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
	Score  float32 `json:"score"`
}

// NewPrediction combines a preprocessing result with the model's probabilities for it (nil
// when the image was rejected).
func NewPrediction(file string, res preprocess.Result, probs []float32, classes []string) Prediction {
	p := Prediction{File: file}
	if res.Face != nil {
		p.Face = &Face{X: res.Face.X, Y: res.Face.Y, Width: res.Face.Width, Height: res.Face.Height, Score: res.Face.Score}
	}
	if res.Err != nil {
		msg := res.Err.Error()
		p.Error = &msg
		return p
	}
	if len(probs) != len(classes) || len(probs) == 0 {
		return p
	}
	p.Probabilities = make(map[string]float32, len(classes))
	best := 0
	for i, c := range classes {
		p.Probabilities[c] = probs[i]
		if probs[i] > probs[best] {
			best = i
		}
	}
	p.Label = &classes[best]
	return p
}
