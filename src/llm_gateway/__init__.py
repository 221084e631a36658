"""SageMaker LLM Gateway: TGI and OpenAI dialects in front of SageMaker endpoints running TGI.

The package is laid out by concern:

- ``config``    the models file and environment switches, validated with pydantic
- ``core``      generation parameters, TGI's validation, stream decoding, the generation
                service; no web framework and no dialect is imported here
- ``upstream``  the SageMaker Runtime client (boto3) and its error mapping
- ``dialects``  one package per client dialect (request parsing, response encoding, routes)
- ``http``      the FastAPI app: middleware, SSE responses, app factory
- ``handler``   the Mangum handler for Lambda's buffered mode
- ``emulator``  a SageMaker Runtime + TGI *simulator* for local runs and tests
"""

__version__ = "0.1.0"
