# Talks to `emotions serve` with TF Serving's official gRPC client, unchanged.
# usage: grpc_client.py HOST:PORT MODEL IMAGES_F32 (raw little-endian float32, N x 80 x 80 x 3)
# Prints one JSON line: the probabilities, the version that answered, the metadata's inputs,
# the model status, and the status codes of calls that must fail.
import json, sys

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

addr, model, raw = sys.argv[1:4]
x = np.fromfile(raw, dtype="<f4").reshape(-1, 80, 80, 3)
channel = grpc.insecure_channel(addr)
predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)
models = model_service_pb2_grpc.ModelServiceStub(channel)

meta_req = get_model_metadata_pb2.GetModelMetadataRequest()
meta_req.model_spec.name = model
meta_req.metadata_field.append("signature_def")
meta = predictions.GetModelMetadata(meta_req, timeout=30)
sigs = get_model_metadata_pb2.SignatureDefMap()
meta.metadata["signature_def"].Unpack(sigs)
inputs = sorted(sigs.signature_def["serving_default"].inputs.keys())


def request(name=model, images=x, version=None):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    req.model_spec.signature_name = "serving_default"
    if version is not None:
        req.model_spec.version.value = version
    req.inputs[inputs[0]].CopyFrom(tf.make_tensor_proto(images))
    return req


res = predictions.Predict(request(), timeout=30)
probs = tf.make_ndarray(res.outputs["probabilities"])

status_req = get_model_status_pb2.GetModelStatusRequest()
status_req.model_spec.name = model
status = models.GetModelStatus(status_req, timeout=30)
states = [f"{s.version}:{get_model_status_pb2.ModelVersionStatus.State.Name(s.state)}" for s in status.model_version_status]

errors = {}
for what, call in {
    "unknown_model": lambda: predictions.Predict(request(name="nope"), timeout=30),
    "unknown_version": lambda: predictions.Predict(request(version=99), timeout=30),
    "wrong_shape": lambda: predictions.Predict(request(images=np.zeros((1, 3), "float32")), timeout=30),
    "status_unknown_model": lambda: models.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "nope"}), timeout=30),
}.items():
    try:
        call()
        errors[what] = "OK"
    except grpc.RpcError as e:
        errors[what] = e.code().name

print(json.dumps({
    "probabilities": probs.reshape(-1).tolist(),
    "shape": list(probs.shape),
    "version": res.model_spec.version.value,
    "inputs": inputs,
    "status": states,
    "errors": errors,
}))
