"""Upstream I/O: SageMaker Runtime through boto3 (:mod:`.sagemaker`) and its error mapping
(:mod:`.errors`)."""
