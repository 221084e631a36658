"""Deployment helpers: TGI image URIs (``image_uri``), the endpoint template's generated
Mappings (``mappings``) and partner API keys (``keys``); CLI in ``deploy.cli``."""
