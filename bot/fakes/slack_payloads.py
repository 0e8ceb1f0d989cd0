"""What a Slack Web API client sends, parsed and checked as Slack would: arguments, blocks and views."""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal, InvalidOperation

from aiohttp import web
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

# https://docs.slack.dev/reference/block-kit/blocks: "up to 50 blocks in each message, and 100 blocks in modals".
MESSAGE_BLOCKS = 50


class SlackApiError(Exception):
    """An `{"ok": false}` answer: HTTP 200 unless it is a rate limit."""

    def __init__(self, error: str, status: int = 200, headers: dict[str, str] | None = None, **extra) -> None:
        super().__init__(error)
        self.body = {"ok": False, "error": error, **extra}
        self.status = status
        self.headers = headers or {}


def _invalid(error: str, problems: list[str]) -> SlackApiError:
    # Slack lists each problem with its JSON pointer, e.g. "must be less than 3001 characters [json-pointer:/blocks/0/text/text]".
    return SlackApiError(error, errors=problems, response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})


async def arguments(request: web.Request) -> dict:
    """Query string and body merged, as Slack accepts them (https://docs.slack.dev/apis/web-api, "Pass arguments as")."""
    args: dict = dict(request.query)
    if not request.can_read_body:
        return args
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise SlackApiError("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackApiError("json_not_object")
        return {**args, **body}
    if request.content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        return {**args, **{k: v for k, v in (await request.post()).items() if isinstance(v, str)}}
    raise SlackApiError("invalid_post_type")


def _decoded(value, error: str):
    # Form bodies carry blocks and views as JSON strings; JSON bodies carry them as they are.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise SlackApiError(error) from None
    return value


def blocks_arg(value) -> list[dict]:
    """The blocks, checked with slack_sdk's own Block Kit validators, plus the message limit of 50."""
    blocks = _decoded(value, "invalid_blocks_format")
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        raise SlackApiError("invalid_blocks_format")
    if len(blocks) > MESSAGE_BLOCKS:
        raise _invalid("invalid_blocks", [f"no more than {MESSAGE_BLOCKS} items allowed [json-pointer:/blocks]"])
    problems = [f"{_problem(Block, b)} [json-pointer:/blocks/{i}]" for i, b in enumerate(blocks) if _problem(Block, b)]
    ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    problems += [f"duplicate block_id {d!r} [json-pointer:/blocks]" for d in sorted({i for i in ids if ids.count(i) > 1})]
    if problems:
        raise _invalid("invalid_blocks", problems)
    return blocks


def view_arg(value) -> dict:
    view = _decoded(value, "invalid_arguments")
    if not isinstance(view, dict):
        raise _invalid("invalid_arguments", ["view must be an object [json-pointer:/view]"])
    problem = _problem(View, view)
    if problem:
        raise _invalid("invalid_arguments", [f"{problem} [json-pointer:/view]"])
    return view


def metadata_arg(value) -> dict | None:
    """Message metadata: an object with `event_type` and an `event_payload` object (https://docs.slack.dev/messaging/message-metadata).

    The two errors are chat.postMessage's own: invalid_metadata_format, invalid_metadata_schema.
    """
    metadata = _decoded(value, "invalid_metadata_format")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise SlackApiError("invalid_metadata_format")
    if not isinstance(metadata.get("event_type"), str) or not isinstance(metadata.get("event_payload"), dict):
        raise SlackApiError("invalid_metadata_schema")
    return {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}


def _problem(model, payload) -> str | None:
    """What slack_sdk's validators reject in `payload`, or None when it is valid."""
    try:
        parsed = model.parse(payload) if model is Block else model(**payload)
        if parsed is None:
            return f"unsupported type {payload.get('type')!r}"
        parsed.to_dict()  # runs every validator, nested ones included
    except Exception as error:  # a malformed payload raises anything from TypeError to SlackObjectFormationError
        return str(error) or type(error).__name__
    return None


def is_true(value) -> bool:
    return value is True or str(value).lower() in {"true", "1"}


def ts_arg(value, error: str, default: Decimal) -> Decimal:
    """A message timestamp argument (`oldest`, `latest`); Decimal, as "1718364000.000100" has more digits than a float keeps."""
    if value in (None, ""):
        return default
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise SlackApiError(error) from None


def next_cursor(ts: str) -> str:
    """The cursor to the page after the message `ts`."""
    # Slack's read "next_ts:<ts>" once base64-decoded (conversations.history docs example "bmV4dF90czoxNTEyMDg1ODYxMDAwNTQz").
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def cursor_arg(value) -> Decimal:
    """Messages older than this timestamp make the page a cursor asks for; no cursor: no bound."""
    if not value:
        return Decimal("Infinity")
    try:
        prefix, _, ts = base64.b64decode(str(value), validate=True).decode().partition(":")
        if prefix != "next_ts":
            raise ValueError(value)
        return Decimal(ts)
    except (binascii.Error, UnicodeDecodeError, ValueError, InvalidOperation):
        raise SlackApiError("invalid_cursor") from None
