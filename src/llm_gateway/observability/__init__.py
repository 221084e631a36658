"""Every request measured: one :class:`~.record.RequestRecord` per request, filled on the way
through, then written once at the end as CloudWatch EMF metrics (:mod:`.metrics`) and one
structured log line (:mod:`.logs`). :mod:`.tracing` wraps upstream calls in X-Ray subsegments
when tracing is on.
"""
