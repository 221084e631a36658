"""The gateway's core: TGI parameter types and validation, stream decoding, the generation
service. It imports no web framework and no dialect; dialects depend on it, not the reverse."""
