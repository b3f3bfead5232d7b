"""Stored completions (docs/ledger.md): the captured calls of the calling key, read and
deleted.

Matches OpenAI's stored-completions API: lists are `{"object": "list", "data", "first_id",
"last_id", "has_more"}`, paged with `after` (the last id of the previous page), `limit`
(default 20, 1 to 100) and `order` (by creation time, `asc` by default). Every operation is
scoped to one key: another key's completion does not exist for it (404, never visible).

The web layer parses the query with `list_query()` / `page_query()` (400s naming the
parameter) and calls one `StoredCompletions` method.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, or_, select
from sqlalchemy.exc import SQLAlchemyError

from ..database import Database
from ..errors import ApiError, database_unavailable, invalid_request
from ..tables import CALLS, STORED

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
ORDERS = ("asc", "desc")
_METADATA_ARG = re.compile(r"^metadata\[(.+)\]$")
_WHOLE_NUMBER = re.compile(r"^[0-9]{1,6}$")


@dataclass(frozen=True)
class Page:
    """Where a list page starts and how long it is."""

    after: str | None = None
    limit: int = DEFAULT_LIMIT
    order: str = "asc"


@dataclass(frozen=True)
class ListQuery:
    """A stored-completions listing: a page, and the filters every item must pass."""

    page: Page = field(default_factory=Page)
    model: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()


def page_query(args: Any) -> Page:
    """The `after`, `limit` and `order` of a query string (a werkzeug MultiDict); raises a
    400 `invalid_request_error` naming the parameter."""
    raw_limit = args.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        limit = int(raw_limit) if _WHOLE_NUMBER.match(raw_limit) else 0
        if not 1 <= limit <= MAX_LIMIT:
            raise invalid_request(
                f"Invalid 'limit': expected an integer from 1 to {MAX_LIMIT}, got "
                f"{raw_limit[:40]!r}.",
                param="limit",
            )
    order = args.get("order", "asc")
    if order not in ORDERS:
        raise invalid_request(
            f"Invalid 'order': expected 'asc' or 'desc', got {order[:40]!r}.", param="order"
        )
    after = args.get("after") or None
    return Page(after, limit, order)


def list_query(args: Any) -> ListQuery:
    """A listing's page, `model` and `metadata[key]=value` filters from the query string."""
    pairs = []
    for name, value in args.items(multi=True):
        match = _METADATA_ARG.match(name)
        if match:
            pairs.append((match.group(1), value))
    return ListQuery(page_query(args), args.get("model") or None, tuple(pairs))


def not_found(completion_id: str) -> ApiError:
    """OpenAI's answer for a stored completion that does not exist (for this key)."""
    return ApiError(404, f"No chat completion found with id '{completion_id[:200]}'.")


class StoredCompletions:
    """Reads and deletes the `stored_completions` rows of one key at a time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list(self, key_id: str, query: ListQuery) -> dict[str, Any]:
        """The key's stored completions that pass the filters, one page of them."""
        page = query.page
        stmt = _completions().where(STORED.c.key_id == key_id)
        if query.model is not None:
            stmt = stmt.where(STORED.c.model == query.model)
        for name, value in query.metadata:
            # A cheap filter in SQL on the stored JSON (compact, keys sorted); checked exactly
            # below, since the text could also appear inside a value.
            pair = f"{json.dumps(name, ensure_ascii=False)}:{json.dumps(value, ensure_ascii=False)}"
            stmt = stmt.where(STORED.c.request_metadata.contains(pair, autoescape=True))
        found: list[Any] = []
        with self._reading() as conn:
            cursor = self._anchor(conn, key_id, page.after, "after") if page.after else None
            batch = page.limit + 1
            while len(found) <= page.limit:
                rows = conn.execute(_paged(stmt, cursor, page.order).limit(batch)).all()
                found += [r for r in rows if _metadata_matches(r, query.metadata)]
                if len(rows) < batch:
                    break
                cursor = (rows[-1].created_at, rows[-1].call_id)
        items = [_completion_object(r) for r in found[: page.limit]]
        return _list(items, len(found) > page.limit)

    def get(self, key_id: str, completion_id: str) -> dict[str, Any]:
        """The key's stored completion `completion_id`; raises 404."""
        with self._reading() as conn:
            row = conn.execute(_newest(_completions(), key_id, completion_id)).first()
        if row is None:
            raise not_found(completion_id)
        return _completion_object(row)

    def messages(self, key_id: str, completion_id: str, page: Page) -> dict[str, Any]:
        """The request messages of the key's stored completion, one page of them, each with
        the id `<completion id>-<position>`; raises 404."""
        stmt = select(STORED.c.request_body).select_from(STORED)
        with self._reading() as conn:
            row = conn.execute(_newest(stmt, key_id, completion_id)).first()
        if row is None:
            raise not_found(completion_id)
        messages = json.loads(row.request_body).get("messages")
        items = [
            _message_object(f"{completion_id}-{i}", m)
            for i, m in enumerate(messages if isinstance(messages, list) else [])
            if isinstance(m, dict)
        ]
        if page.order == "desc":
            items.reverse()
        if page.after is not None:
            at = next((i for i, m in enumerate(items) if m["id"] == page.after), None)
            if at is None:
                raise invalid_request(
                    f"Invalid 'after': no message with id '{page.after[:200]}' in this "
                    "chat completion.",
                    param="after",
                )
            items = items[at + 1 :]
        return _list(items[: page.limit], len(items) > page.limit)

    def delete(self, key_id: str, completion_id: str) -> dict[str, Any]:
        """Delete the key's stored completion `completion_id`; raises 404."""
        try:
            with self.db.write() as conn:
                done = conn.execute(
                    delete(STORED).where(
                        and_(STORED.c.key_id == key_id, STORED.c.id == completion_id)
                    )
                )
        except SQLAlchemyError as exc:
            raise _unavailable() from exc
        if not done.rowcount:
            raise not_found(completion_id)
        return {"object": "chat.completion.deleted", "id": completion_id, "deleted": True}

    def _anchor(
        self, conn: Connection, key_id: str, completion_id: str, param: str
    ) -> tuple[datetime, str]:
        """Where the completion `completion_id` sits in the key's order; raises 400."""
        stmt = select(STORED.c.created_at, STORED.c.call_id).select_from(STORED)
        row = conn.execute(_newest(stmt, key_id, completion_id)).first()
        if row is None:
            raise invalid_request(
                f"Invalid '{param}': no stored chat completion with id '{completion_id[:200]}'.",
                param=param,
            )
        return row.created_at, row.call_id

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            with self.db.read() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise _unavailable() from exc


def _completions() -> Any:
    """The columns a completion object is built from (the call's request id included)."""
    return select(
        STORED.c.call_id,
        STORED.c.created_at,
        STORED.c.request_metadata,
        STORED.c.response_body,
        CALLS.c.request_id,
    ).select_from(STORED.outerjoin(CALLS, CALLS.c.id == STORED.c.call_id))


def _newest(stmt: Any, key_id: str, completion_id: str) -> Any:
    """`stmt` narrowed to the key's completion with this id; the newest, should an upstream
    have used one id twice."""
    return (
        stmt.where(and_(STORED.c.key_id == key_id, STORED.c.id == completion_id))
        .order_by(STORED.c.created_at.desc(), STORED.c.call_id.desc())
        .limit(1)
    )


def _paged(stmt: Any, cursor: tuple[datetime, str] | None, order: str) -> Any:
    """`stmt` in creation order (call ids break ties: they are time-ordered), past `cursor`."""
    created, call_id = STORED.c.created_at, STORED.c.call_id
    if order == "asc":
        stmt = stmt.order_by(created.asc(), call_id.asc())
        if cursor is not None:
            stmt = stmt.where(
                or_(created > cursor[0], and_(created == cursor[0], call_id > cursor[1]))
            )
    else:
        stmt = stmt.order_by(created.desc(), call_id.desc())
        if cursor is not None:
            stmt = stmt.where(
                or_(created < cursor[0], and_(created == cursor[0], call_id < cursor[1]))
            )
    return stmt


def _metadata_matches(row: Any, wanted: tuple[tuple[str, str], ...]) -> bool:
    if not wanted:
        return True
    metadata = json.loads(row.request_metadata or "{}")
    return all(metadata.get(name) == value for name, value in wanted)


def _completion_object(row: Any) -> dict[str, Any]:
    """The completion as the client received it, plus the request's `metadata` and the
    call's `request_id`, as OpenAI's stored completions have them."""
    completion: dict[str, Any] = json.loads(row.response_body)
    completion["metadata"] = json.loads(row.request_metadata) if row.request_metadata else {}
    completion["request_id"] = row.request_id
    return completion


def _message_object(message_id: str, message: dict[str, Any]) -> dict[str, Any]:
    """A request message as OpenAI's stored-completion messages list shows it: `content` is
    the text (the text parts joined, for an array), `content_parts` the array when one was
    given; the message's other fields (tool calls, tool_call_id, ...) as sent."""
    content = message.get("content")
    parts = None
    if isinstance(content, list):
        parts = content
        texts = [t for p in content if isinstance(p, dict) and isinstance(t := p.get("text"), str)]
        content = "\n".join(texts) if texts else None
    extra = {k: v for k, v in message.items() if k not in ("role", "content", "name")}
    return {
        "id": message_id,
        "role": message.get("role"),
        "content": content,
        "name": message.get("name"),
        "content_parts": parts,
    } | extra


def _list(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }


def _unavailable() -> ApiError:
    return database_unavailable("stored completions cannot be read or deleted now")
