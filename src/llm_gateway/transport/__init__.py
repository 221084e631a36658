"""Transports: how request bytes reach a model. SageMaker Runtime through unmodified boto3
(:mod:`.sagemaker`) and its error mapping (:mod:`.errors`). Backends share it; the
composition root binds it to each model as a core :class:`~llm_gateway.core.ports.Channel`."""
