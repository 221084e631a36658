"""The floor for the benchmarks: the least a FastAPI + boto3 pass-through can do.

No validation, templates, metrics, logs, deadlines, retries or error mapping: ``/generate``
forwards the body to ``invoke_endpoint`` and returns what comes back; ``/generate_stream``
relays ``PayloadPart`` bytes as they arrive. The gateway's overhead is judged against this.
Run it as ``uvicorn bare_app:app`` (ASGI) or through ``handler`` (Mangum).
"""

from __future__ import annotations

import os

import boto3
from botocore.config import Config
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from mangum import Mangum
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

ENDPOINT = os.environ.get("BARE_ENDPOINT", "bench-endpoint")
client = boto3.client(
    "sagemaker-runtime", config=Config(retries={"total_max_attempts": 1}, max_pool_connections=256)
)
app = FastAPI()


@app.get("/health")
async def health() -> Response:
    return Response(status_code=200)


@app.post("/generate")
async def generate(request: Request) -> Response:
    body = await request.body()
    out = await run_in_threadpool(
        client.invoke_endpoint, EndpointName=ENDPOINT, Body=body, ContentType="application/json"
    )
    return Response(out["Body"].read(), media_type="application/json")


@app.post("/generate_stream")
async def generate_stream(request: Request) -> StreamingResponse:
    body = await request.body()
    out = await run_in_threadpool(
        client.invoke_endpoint_with_response_stream,
        EndpointName=ENDPOINT,
        Body=body,
        ContentType="application/json",
    )

    def parts():
        for event in out["Body"]:
            part = event.get("PayloadPart")
            if part:
                yield part["Bytes"]

    return StreamingResponse(iterate_in_threadpool(parts()), media_type="text/event-stream")


handler = Mangum(app, lifespan="off")
