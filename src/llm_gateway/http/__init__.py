"""The web layer: the FastAPI app factory (:mod:`.app`), middleware, SSE relaying, timings and
error rendering. Dialect routes plug into it."""
