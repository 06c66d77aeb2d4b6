"""Score with KServe's own v2 REST client, `kserve.InferenceRESTClient`, unchanged (run in .venv-clients).

    python kserve_client.py BASE_URL MODEL json|binary  < {"columns", "rows", "id", "headers", "outputs"}

Sends one FP64 input tensor per column with KServe's `InferRequest`/`InferInput`: as JSON data, or
(binary) as binary tensor data asking for the outputs as binary data too. Prints one JSON object:
{"outputs": {name: [values]}, "id", "headers"}, or {"status", "message"} when the server refuses.
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


async def main(base_url: str, model: str, mode: str, request: dict) -> dict:
    binary = mode == "binary"
    columns = np.array(request["rows"], dtype=np.float64).T
    inputs = []
    for name, values in zip(request["columns"], columns, strict=True):
        tensor = InferInput(name=name, shape=[len(values)], datatype="FP64")
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    outputs = [RequestedOutput(name, parameters={"binary_data": True}) for name in request.get("outputs", [])]
    infer = InferRequest(model_name=model, infer_inputs=inputs, request_id=request["id"],
                         request_outputs=outputs or None,
                         parameters={"binary_data_output": True} if binary and not outputs else None)
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=30))
    headers: dict[str, str] = {}
    try:
        response = await client.infer(base_url, infer, model_name=model, headers=request.get("headers"),
                                       response_headers=headers)
    except httpx.HTTPStatusError as exc:
        return {"status": exc.response.status_code, "message": str(exc)}
    finally:
        await client.close()
    return {"outputs": {output.name: output.as_numpy().tolist() for output in response.outputs},
            "id": response.id, "headers": {k.lower(): v for k, v in headers.items()}}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4], json.load(sys.stdin)))))
