#!/bin/bash
# Lambda Web Adapter start-up script (stream mode: Handler run.sh, AWS_LAMBDA_EXEC_WRAPPER
# /opt/bootstrap). The adapter waits until GET /health answers, then forwards every API Gateway
# event to this server as HTTP and streams the response back (AWS_LWA_INVOKE_MODE).
#
# Import path, first wins: the function code, the dependency layer (/opt/python), then the
# runtime's own directory, which provides boto3 (deliberately not packaged in the layer).
set -euo pipefail
task_root="${LAMBDA_TASK_ROOT:-$(cd "$(dirname "$0")" && pwd)}"
export PYTHONPATH="${task_root}:${LAYER_PYTHON_DIR:-/opt/python}:${LAMBDA_RUNTIME_DIR:-/var/runtime}${PYTHONPATH:+:$PYTHONPATH}"
log_level="$(echo "${LOG_LEVEL:-WARNING}" | tr '[:upper:]' '[:lower:]')"
exec python3 -m uvicorn llm_gateway.asgi:app \
    --host 127.0.0.1 \
    --port "${AWS_LWA_PORT:-${PORT:-8080}}" \
    --lifespan off \
    --no-access-log \
    --no-server-header \
    --timeout-keep-alive 75 \
    --log-level "${log_level}"
