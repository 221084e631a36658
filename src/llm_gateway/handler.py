"""The Lambda handler for buffered mode: Mangum around the same app.

Mangum buffers whole responses (streams arrive in one piece), which is why streaming mode
runs uvicorn behind the Lambda Web Adapter instead. Everything expensive is built at import,
once per Lambda container. API Gateway REST (v1) and HTTP API (v2) events are both accepted.
"""

from mangum import Mangum

from llm_gateway.asgi import app

handler = Mangum(app, lifespan="off", api_gateway_base_path=None)
