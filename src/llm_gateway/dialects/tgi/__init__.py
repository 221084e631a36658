"""TGI's native dialect: ``/generate``, ``/generate_stream``, ``/``, ``/info`` and the same per
model under ``/models/{name}``, in TGI 3.x shapes."""
