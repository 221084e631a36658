"""Client dialects. Each package parses its requests into core calls and encodes core results
and errors in its own shapes: :mod:`.tgi` (TGI's native API)."""
