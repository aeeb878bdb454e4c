package tfserving

import (
	"context"
	"time"

	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// graft ships TF Serving's messages but no service stubs, so the two services are described
// by hand with the names the official clients call.

type predictionService interface {
	Predict(context.Context, *pb.PredictRequest) (*pb.PredictResponse, error)
	GetModelMetadata(context.Context, *pb.GetModelMetadataRequest) (*pb.GetModelMetadataResponse, error)
}

type modelService interface {
	GetModelStatus(context.Context, *pb.GetModelStatusRequest) (*pb.GetModelStatusResponse, error)
}

var predictionServiceDesc = grpc.ServiceDesc{
	ServiceName: "tensorflow.serving.PredictionService",
	HandlerType: (*predictionService)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Predict", Handler: unary("/tensorflow.serving.PredictionService/Predict",
			func(s *grpcAPI, ctx context.Context, req *pb.PredictRequest) (any, error) { return s.Predict(ctx, req) })},
		{MethodName: "GetModelMetadata", Handler: unary("/tensorflow.serving.PredictionService/GetModelMetadata",
			func(s *grpcAPI, ctx context.Context, req *pb.GetModelMetadataRequest) (any, error) {
				return s.GetModelMetadata(ctx, req)
			})},
	},
	Metadata: "tensorflow_serving/apis/prediction_service.proto",
}

var modelServiceDesc = grpc.ServiceDesc{
	ServiceName: "tensorflow.serving.ModelService",
	HandlerType: (*modelService)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "GetModelStatus", Handler: unary("/tensorflow.serving.ModelService/GetModelStatus",
			func(s *grpcAPI, ctx context.Context, req *pb.GetModelStatusRequest) (any, error) {
				return s.GetModelStatus(ctx, req)
			})},
	},
	Metadata: "tensorflow_serving/apis/model_service.proto",
}

// unary adapts a typed method to grpc's handler signature (what protoc-gen-go-grpc generates).
func unary[Req any](fullMethod string, call func(*grpcAPI, context.Context, *Req) (any, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		req := new(Req)
		if err := dec(req); err != nil {
			return nil, err
		}
		api := srv.(*grpcAPI)
		if interceptor == nil {
			return call(api, ctx, req)
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}
		return interceptor(ctx, req, info, func(ctx context.Context, r any) (any, error) { return call(api, ctx, r.(*Req)) })
	}
}

type grpcAPI struct{ s *Server }

// GRPCServer serves TF Serving's PredictionService (Predict, GetModelMetadata) and
// ModelService (GetModelStatus).
func (s *Server) GRPCServer() *grpc.Server {
	size := int(min(s.cfg.MaxRequestBytes, 1<<31-1))
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(size), grpc.MaxSendMsgSize(size),
		grpc.MaxHeaderListSize(maxHeaderBytes),
		grpc.InTapHandle(s.grpcTap),
		grpc.ChainUnaryInterceptor(s.grpcMetrics, s.recoverUnary), // metrics count the INTERNAL a panic becomes
		grpc.StreamInterceptor(s.recoverStream),
	}
	if s.cfg.ReadHeaderTimeout > 0 { // a connection must finish its HTTP/2 handshake in it
		opts = append(opts, grpc.ConnectionTimeout(s.cfg.ReadHeaderTimeout))
	}
	if s.cfg.IdleTimeout > 0 {
		opts = append(opts, grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: s.cfg.IdleTimeout}))
	}
	g := grpc.NewServer(opts...)
	api := &grpcAPI{s: s}
	g.RegisterService(&predictionServiceDesc, api)
	g.RegisterService(&modelServiceDesc, api)
	return g
}

func (s *Server) grpcMetrics(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	endpoint := "grpc" + info.FullMethod[len("/tensorflow.serving"):]
	code := codes.OK
	errCode := ""
	if err != nil {
		code = codeOf(err)
		errCode = code.String()
	}
	s.metrics.observe(endpoint, code.String(), errCode, start)
	return resp, err
}

func specFromProto(m *pb.ModelSpec) ModelSpec {
	spec := ModelSpec{Name: m.GetName(), Label: m.GetVersionLabel()}
	if v := m.GetVersion(); v != nil {
		spec.Version = v.GetValue()
	}
	return spec
}

func (a *grpcAPI) Predict(ctx context.Context, req *pb.PredictRequest) (*pb.PredictResponse, error) {
	if timeout := a.s.cfg.RequestTimeout; timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// grpc-go has read and unmarshalled the message by now (the tap bounds how many at once):
	// what the reservation bounds is its decoding, the batch and the session's copies.
	size := int64(proto.Size(req))
	a.s.metrics.requestBytes.Observe(float64(size))
	res, rerr := a.s.budget.reserve(ctx, size)
	if rerr != nil {
		return nil, rerr
	}
	defer res.release()
	outputs, spec, err := a.s.predict(ctx, specFromProto(req.GetModelSpec()), req.GetModelSpec().GetSignatureName(),
		func(name string, sv *servable) (map[string]rawTensor, *Error) {
			_, sig, _ := sv.signature(name)
			return decodeProtoInputs(name, sig, req.GetInputs(), a.s.cfg.MaxRequestBytes)
		})
	if err != nil {
		return nil, err
	}
	resp := &pb.PredictResponse{ModelSpec: spec, Outputs: map[string]*tensorpb.TensorProto{}}
	filter := req.GetOutputFilter()
	for name, t := range outputs {
		if len(filter) == 0 || contains(filter, name) {
			resp.Outputs[name] = t.proto()
		}
	}
	for _, name := range filter {
		if _, ok := outputs[name]; !ok {
			return nil, errorf(codes.InvalidArgument, "output_filter names %q, which the signature does not output (outputs: %v)", name, sortedKeys(outputs))
		}
	}
	return resp, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (a *grpcAPI) GetModelMetadata(_ context.Context, req *pb.GetModelMetadataRequest) (*pb.GetModelMetadataResponse, error) {
	for _, f := range req.GetMetadataField() {
		if f != "signature_def" {
			return nil, errorf(codes.InvalidArgument, "metadata field %q is not supported (only signature_def)", f)
		}
	}
	spec, sigs, _, err := a.s.modelMetadata(specFromProto(req.GetModelSpec()))
	if err != nil {
		return nil, err
	}
	packed, err := anypb.New(sigs)
	if err != nil {
		return nil, err
	}
	return &pb.GetModelMetadataResponse{ModelSpec: spec, Metadata: map[string]*anypb.Any{"signature_def": packed}}, nil
}

func (a *grpcAPI) GetModelStatus(_ context.Context, req *pb.GetModelStatusRequest) (*pb.GetModelStatusResponse, error) {
	return a.s.modelStatus(specFromProto(req.GetModelSpec()))
}
