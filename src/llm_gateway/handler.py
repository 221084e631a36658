"""The Lambda handler for buffered mode: Mangum around the same app, decorated by Powertools.

Mangum buffers whole responses (streams arrive in one piece), which is why streaming mode
runs uvicorn behind the Lambda Web Adapter instead. Everything expensive is built at import,
once per Lambda container. API Gateway REST (v1) and HTTP API (v2) events are both accepted.
Powertools adds Lambda context and API Gateway's request id (as ``correlation_id``) to the log
lines, and writes the cold-start metric at the end of the first invocation (the request's own
metric documents are written when its response has ended, as in streaming mode).
"""

# ruff: noqa: E402 (the collector is paused before the imports below, on purpose)
import gc

# Paused while the handler loads, as llm_gateway.app.resume_collector explains; create_app
# turns it back on.
gc.disable()

import dataclasses
import warnings
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from mangum import Mangum

from llm_gateway.app import create_app
from llm_gateway.config.settings import Settings
from llm_gateway.observability.observer import Observer

# Health probes add no metrics; Powertools would warn about every such invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")

# API Gateway's buffered integrations give up after 29 s: answer (or fail cleanly) before that.
BUFFERED_LIMIT_SECONDS = 28.0

settings = Settings.from_env()
if settings.request_timeout is None:
    settings = dataclasses.replace(settings, request_timeout=BUFFERED_LIMIT_SECONDS)
observer = Observer(settings, flush_per_request=False)
# Lambda freezes the environment once the handler returns: budgets settle before it does.
app = create_app(settings=settings, observer=observer, settle_inline=True)
_mangum = Mangum(app, lifespan="off", api_gateway_base_path="/")


@observer.logger.logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST
)
@observer.metrics.metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _mangum(event, context)
