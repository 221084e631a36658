"""Chat messages as templates see them: a role and a string.

>>> normalise([Message("developer", "Be brief."), Message("system", "Use English."), Message("user", "Hi")])
(Message(role='system', content='Be brief.\\n\\nUse English.'), [Message(role='user', content='Hi')])
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway.core.errors import template_error


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


ALTERNATION = "Conversation roles must alternate user/assistant/user/assistant/..."


def normalise(messages: list[Message]) -> tuple[Message | None, list[Message]]:
    """Split off the leading system messages (OpenAI's ``developer`` is a system message),
    merged with a blank line, from the conversation that follows."""
    if not messages:
        raise template_error("`messages` must not be empty")
    converted = [Message("system", m.content) if m.role == "developer" else m for m in messages]
    leading = 0
    while leading < len(converted) and converted[leading].role == "system":
        leading += 1
    system = None
    if leading:
        system = Message("system", "\n\n".join(m.content for m in converted[:leading]))
    rest = converted[leading:]
    for message in rest:
        if message.role not in ("user", "assistant", "system"):
            raise template_error(f"Unsupported role '{message.role}'")
    return system, rest


def require_alternation(conversation: list[Message]) -> None:
    """user, assistant, user, …: what Llama 2, Mistral, Falcon and Gemma templates enforce."""
    for index, message in enumerate(conversation):
        if message.role != ("user" if index % 2 == 0 else "assistant"):
            raise template_error(ALTERNATION)


def require_no_inner_system(conversation: list[Message], family: str) -> None:
    if any(m.role == "system" for m in conversation):
        raise template_error(
            f"System messages are only supported at the start of the conversation for {family}"
        )
