package tfserving

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	tf "github.com/wamuir/graft/tensorflow"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// WarmupFile is TF Serving's file of warm-up requests, in a version's assets.extra/: a
// TFRecord file of PredictionLog protos, each run once before the version takes traffic.
const WarmupFile = "tf_serving_warmup_requests"

// maxWarmupRecords is TF Serving's own bound on the records of a warm-up file.
const maxWarmupRecords = 1000

// readTFRecords calls each with every record of a TFRecord stream (length, masked crc32c
// of the length, data, masked crc32c of the data), at most maxRecords of at most maxLen
// bytes each: the length is checked before the record is allocated.
func readTFRecords(r io.Reader, maxLen int64, maxRecords int, each func([]byte) error) error {
	br := bufio.NewReader(r)
	var head [12]byte
	for i := 0; ; i++ {
		if _, err := io.ReadFull(br, head[:]); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("record %d: header cut short: %w", i, err)
		}
		if i >= maxRecords {
			return fmt.Errorf("more than %d records", maxRecords)
		}
		n := binary.LittleEndian.Uint64(head[:8])
		if maskedCRC(head[:8]) != binary.LittleEndian.Uint32(head[8:]) {
			return fmt.Errorf("record %d: its length fails its checksum", i)
		}
		if n > uint64(maxLen) {
			return fmt.Errorf("record %d: %d bytes, more than the %d a request may have", i, n, maxLen)
		}
		data := make([]byte, n+4)
		if _, err := io.ReadFull(br, data); err != nil {
			return fmt.Errorf("record %d: cut short: %w", i, err)
		}
		if maskedCRC(data[:n]) != binary.LittleEndian.Uint32(data[n:]) {
			return fmt.Errorf("record %d: its data fails its checksum", i)
		}
		if err := each(data[:n]); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
}

// warmUp runs the version's warm-up requests through its batcher, as requests will be: those
// of its WarmupFile, or without one a single request of zeros for the image signature. The
// first run of a signature is the slow one (graph optimisation, allocation); a failing one
// keeps the version out of service.
func (s *servable) warmUp(dir string, maxRequestBytes int64) error {
	f, err := os.Open(filepath.Join(dir, "assets.extra", WarmupFile))
	if errors.Is(err, fs.ErrNotExist) {
		name := s.imageSignature()
		_, sig, _ := s.signature(name)
		inputs, err := zeroInputs(sig, maxRequestBytes)
		if err != nil {
			return fmt.Errorf("warm-up request for signature %s: %w", name, err)
		}
		if _, err := s.batch.submit(context.Background(), name, inputs); err != nil {
			return fmt.Errorf("warm-up request (zeros) for signature %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	err = readTFRecords(f, maxRequestBytes, maxWarmupRecords, func(rec []byte) error {
		var log pb.PredictionLog
		if err := proto.Unmarshal(rec, &log); err != nil {
			return fmt.Errorf("not a PredictionLog: %w", err)
		}
		req := log.GetPredictLog().GetRequest()
		if req == nil {
			return errors.New("not a PredictLog: this server answers Predict only")
		}
		name, sig, serr := s.signature(req.GetModelSpec().GetSignatureName())
		if serr != nil {
			return serr
		}
		inputs, derr := decodeProtoInputs(name, sig, req.GetInputs(), maxRequestBytes)
		if derr != nil {
			return derr
		}
		_, err := s.batch.submit(context.Background(), name, inputs)
		return err
	})
	if err != nil {
		return fmt.Errorf("warm-up %s: %w", f.Name(), err)
	}
	return nil
}

// zeroInputs is one row of zeros (empty strings for a string input) for each input of sig
// (unknown dimensions taken as 1).
func zeroInputs(sig tf.Signature, maxBytes int64) (map[string]rawTensor, error) {
	out := map[string]rawTensor{}
	for name, info := range sig.Inputs {
		size, ok := elementSize[info.DType]
		if info.DType == tf.String {
			size, ok = stringOverhead, true
		}
		if !ok {
			return nil, errorf(codes.Unimplemented, "input %s: dtype %s: give the version an assets.extra/%s", name, dtypeName(info.DType), WarmupFile)
		}
		shape, err := info.Shape.ToSlice()
		if err != nil {
			shape = nil // unknown rank: a scalar is as good a guess as any
		}
		shape = append([]int64{}, shape...)
		for i, d := range shape {
			if d < 0 {
				shape[i] = 1
			}
		}
		n, ok := elementCount(shape, maxBytes/int64(size))
		if !ok {
			return nil, fmt.Errorf("input %s: shape %s is larger than a request may be", name, shapeString(shape))
		}
		if info.DType == tf.String {
			out[name] = rawTensor{dtype: tf.String, shape: shape, strs: make([]string, n)}
			continue
		}
		out[name] = rawTensor{dtype: info.DType, shape: shape, data: make([]byte, n*int64(size))}
	}
	return out, nil
}
