"""OpenAI's dialect: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``, in the shapes
the openai SDK parses, over the same models and core as the TGI dialect."""
