"""Hugging Face TGI as the upstream: its generate API (:mod:`.generate`, 0.8.2 and 3.x
streams) and its Messages API (:mod:`.messages`, TGI ≥ 2.4 on ``/invocations``)."""
