package tfserving

import (
	"context"
	"fmt"
	"time"

	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The operations both APIs offer, in TF Serving's protos; rest.go and grpc.go only convert.

func (s *Server) modelStatus(spec ModelSpec) (*pb.GetModelStatusResponse, error) {
	version, err := s.models.resolve(spec)
	if err != nil {
		return nil, err
	}
	versions, err := s.models.status(version)
	if err != nil {
		return nil, err
	}
	return &pb.GetModelStatusResponse{ModelVersionStatus: versions}, nil
}

// modelMetadata is the version's served signatures, as GetModelMetadata's "signature_def".
func (s *Server) modelMetadata(spec ModelSpec) (*pb.ModelSpec, *pb.SignatureDefMap, *servable, error) {
	sv, release, err := s.models.acquire(spec)
	if err != nil {
		return nil, nil, nil, err
	}
	defer release()
	return s.specOf(sv, ""), &pb.SignatureDefMap{SignatureDef: sv.signatures}, sv, nil
}

func (s *Server) specOf(sv *servable, signature string) *pb.ModelSpec {
	return &pb.ModelSpec{
		Name:          s.models.name,
		VersionChoice: &pb.ModelSpec_Version{Version: wrapperspb.Int64(sv.version)},
		SignatureName: signature,
	}
}

// predict runs a signature on inputs made by decode from the resolved signature.
func (s *Server) predict(ctx context.Context, spec ModelSpec, signature string,
	decode func(sigName string, sv *servable) (map[string]rawTensor, *Error)) (map[string]rawTensor, *pb.ModelSpec, error) {
	if hook := s.testHook.Load(); hook != nil {
		(*hook)()
	}
	sv, release, err := s.models.acquire(spec)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	name, _, serr := sv.signature(signature)
	if serr != nil {
		return nil, nil, serr
	}
	inputs, derr := decode(name, sv)
	if derr != nil {
		return nil, nil, derr
	}
	outputs, runErr := sv.batch.submit(ctx, name, inputs)
	if runErr != nil {
		if codeOf(runErr) == codes.Internal {
			sv.runErrors.log(s.log, time.Now(), fmt.Sprintf("model %s version %d signature %s", s.models.name, sv.version, name), runErr)
		}
		return nil, nil, runErr
	}
	return outputs, s.specOf(sv, name), nil
}
