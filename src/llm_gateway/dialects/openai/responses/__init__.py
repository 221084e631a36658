"""OpenAI's Responses API (``POST /v1/responses``), stateless: one request in, one ``response``
object or its typed event stream out, over the same generation path as chat completions."""
