"""A response's output items: the assistant's ``message`` and its ``function_call`` items, in
OpenAI's key order, and the events that open, grow and close each one.

Items are opened in the order the model produces them, each at the next ``output_index``, and
one is open at a time (a model writes its text, then its calls, one after another); opening an
item closes the one before it. ``id``: ``msg_<request id>`` for the first message, ``fc_<request
id>_<output_index>`` for a call (``msg_<request id>_<output_index>`` for a later message);
``call_id`` is the upstream's tool call id, which the client sends back with the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["message", "function_call"]


@dataclass(slots=True)
class OutputItem:
    index: int  # output_index
    id: str
    kind: Kind
    status: str = "in_progress"
    text: str = ""  # a message's text, a call's arguments
    call_id: str = ""
    name: str = ""
    upstream: int | None = None  # the chat stream's tool-call index
    closed: bool = False

    def part(self) -> dict[str, Any]:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": self.text}

    def body(self, opening: bool = False) -> dict[str, Any]:
        """The item as ``output`` holds it (``opening``: as ``output_item.added`` shows it)."""
        if self.kind == "message":
            return {
                "id": self.id,
                "type": "message",
                "status": self.status,
                "content": [] if opening else [self.part()],
                "role": "assistant",
            }
        return {
            "id": self.id,
            "type": "function_call",
            "status": self.status,
            "arguments": "" if opening else self.text,
            "call_id": self.call_id,
            "name": self.name,
        }

    def at(self) -> dict[str, Any]:
        """Where a delta of this item goes (``item_id``, ``output_index``, …)."""
        where: dict[str, Any] = {"item_id": self.id, "output_index": self.index}
        if self.kind == "message":
            where["content_index"] = 0
        return where

    def opened(self) -> list[tuple[str, dict[str, Any]]]:
        """The events (type, fields) that open this item."""
        events = [
            ("response.output_item.added", {"output_index": self.index, "item": self.body(True)})
        ]
        if self.kind == "message":
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
            events.append(("response.content_part.added", {**self.at(), "part": part}))
        return events

    def delta(self, text: str) -> tuple[str, dict[str, Any]]:
        self.text += text
        if self.kind == "message":
            return "response.output_text.delta", {**self.at(), "delta": text, "logprobs": []}
        return "response.function_call_arguments.delta", {**self.at(), "delta": text}

    def close(self, status: str) -> list[tuple[str, dict[str, Any]]]:
        """The events that close this item with ``status``."""
        self.status, self.closed = status, True
        done = ("response.output_item.done", {"output_index": self.index, "item": self.body()})
        if self.kind == "message":
            return [
                ("response.output_text.done", {**self.at(), "text": self.text, "logprobs": []}),
                ("response.content_part.done", {**self.at(), "part": self.part()}),
                done,
            ]
        return [
            ("response.function_call_arguments.done", {**self.at(), "arguments": self.text}),
            done,
        ]


class OutputItems:
    """The items of one response, as the stream opens them."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.items: list[OutputItem] = []

    @property
    def current(self) -> OutputItem | None:
        last = self.items[-1] if self.items else None
        return last if last is not None and not last.closed else None

    @property
    def text(self) -> str:
        return "".join(i.text for i in self.items if i.kind == "message")

    def open(
        self, kind: Kind, **fields: Any
    ) -> tuple[OutputItem, list[tuple[str, dict[str, Any]]]]:
        """A new item after the others (closing the open one, completed)."""
        events = self.current.close("completed") if self.current is not None else []
        index = len(self.items)
        if kind == "function_call":
            item_id = f"fc_{self.request_id}_{index}"
        elif any(i.kind == "message" for i in self.items):
            item_id = f"msg_{self.request_id}_{index}"
        else:
            item_id = f"msg_{self.request_id}"
        item = OutputItem(index, item_id, kind, **fields)
        self.items.append(item)
        return item, events + item.opened()

    def call(self, upstream: int) -> OutputItem | None:
        return next((i for i in self.items if i.upstream == upstream), None)

    def output(self) -> list[dict[str, Any]]:
        return [i.body() for i in self.items]
