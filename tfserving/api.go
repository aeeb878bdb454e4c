package tfserving

import (
	"context"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The operations both APIs offer, in TF Serving's protos; rest.go and grpc.go only convert.

func (s *Server) modelStatus(spec ModelSpec) (*pb.GetModelStatusResponse, error) {
	versions := s.models.versions()
	if spec.Version != 0 || spec.Label != "" {
		sv, release, err := s.models.acquire(spec)
		if err != nil {
			return nil, err
		}
		release()
		versions = []int64{sv.version}
	} else if spec.Name != s.models.name || len(versions) == 0 {
		if _, _, err := s.models.acquire(spec); err != nil {
			return nil, err
		}
	}
	resp := &pb.GetModelStatusResponse{}
	for _, v := range versions {
		resp.ModelVersionStatus = append(resp.ModelVersionStatus, &pb.ModelVersionStatus{
			Version: v,
			State:   pb.ModelVersionStatus_AVAILABLE,
			Status:  &pb.StatusProto{ErrorCode: corepb.Code_OK},
		})
	}
	return resp, nil
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
			s.log.Printf("model %s version %d signature %s: %v", s.models.name, sv.version, name, runErr)
		}
		return nil, nil, runErr
	}
	return outputs, s.specOf(sv, name), nil
}
