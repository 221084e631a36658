"""Anthropic's Messages API (``/v1/messages``): the anthropic SDKs, LangChain and Claude Code."""
