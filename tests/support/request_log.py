"""Which AWS actions a process really calls, on which resources, and whether an IAM
policy allows them.

A moto server started with ``MotoServer(..., request_log=path)`` writes one JSON line
per request (``RecordingApp``): the access key that signed it, the service of its
credential scope, the operation and its parameters. moto accepts any key, so each
process of a test signs with its own made-up key (``api``, ``worker``) and its calls
can be told apart. ``iam_requests`` turns a line into the IAM actions and resource
ARNs that AWS would authorise, ``allows`` evaluates a policy document on them.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

ACCOUNT = "123456789012"
"""moto's default account."""
REGION = "us-east-1"

_CREDENTIAL = re.compile(r"Credential=([^/&, ]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")


class RecordingApp:
    """WSGI middleware: a JSON line per request to ``path``, then moto answers."""

    def __init__(self, app: Any, path: Path) -> None:
        self._app = app
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        signed = str(environ.get("HTTP_AUTHORIZATION", ""))
        signed += " " + unquote(str(environ.get("QUERY_STRING", "")))  # a presigned URL
        match = _CREDENTIAL.search(signed)
        if match is not None:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            line = {
                "key": match.group(1),
                "service": match.group(3),
                "target": target.rsplit(".", 1)[-1],
                "method": environ.get("REQUEST_METHOD", ""),
                "path": environ.get("PATH_INFO", ""),
                "query": environ.get("QUERY_STRING", ""),
                # S3 bodies are objects: not logged; the others are the parameters.
                "body": "" if match.group(3) == "s3" else body.decode("utf-8", "replace"),
            }
            with self._lock:
                self._file.write(json.dumps(line) + "\n")
                self._file.flush()
        return self._app(environ, start_response)


@dataclass(frozen=True)
class Request:
    key: str
    action: str
    resource: str


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _queue_arn(url_or_name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url_or_name.rstrip('/').rsplit('/', 1)[-1]}"


def _table_arn(table: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _dynamodb(action: str, params: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if action == "TransactWriteItems":  # no IAM action of its own: each part's
        for item in params.get("TransactItems", []):
            ((kind, part),) = item.items()
            yield "dynamodb:" + _TRANSACT_ACTIONS[kind], _table_arn(part["TableName"])
    elif action in ("BatchGetItem", "BatchWriteItem"):
        for table in params.get("RequestItems", {}):
            yield "dynamodb:" + action, _table_arn(table)
    elif action in ("DescribeStream", "GetShardIterator"):
        yield "dynamodb:" + action, params["StreamArn"]
    elif action == "GetRecords":  # moto's iterators begin with their stream's ARN
        yield "dynamodb:" + action, params["ShardIterator"].split("|", 1)[0]
    else:
        yield "dynamodb:" + action, _table_arn(params["TableName"], params.get("IndexName"))


_S3_SUBRESOURCE_ACTIONS = {
    ("POST", "uploads"): "s3:PutObject",  # CreateMultipartUpload
    ("PUT", "uploadId"): "s3:PutObject",  # UploadPart
    ("POST", "uploadId"): "s3:PutObject",  # CompleteMultipartUpload
    ("DELETE", "uploadId"): "s3:AbortMultipartUpload",
}
_S3_OBJECT_ACTIONS = {
    "PUT": "s3:PutObject",
    "GET": "s3:GetObject",
    "HEAD": "s3:GetObject",  # HeadObject is authorised by GetObject
    "DELETE": "s3:DeleteObject",
}


def _s3(method: str, path: str, query: str) -> Iterator[tuple[str, str]]:
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not key:
        yield f"s3:{method}Bucket?{query}", f"arn:aws:s3:::{bucket}"
        return
    params = parse_qs(query, keep_blank_values=True)
    for (verb, name), action in _S3_SUBRESOURCE_ACTIONS.items():
        if verb == method and name in params:
            yield action, f"arn:aws:s3:::{bucket}/{key}"
            return
    yield _S3_OBJECT_ACTIONS[method], f"arn:aws:s3:::{bucket}/{key}"


def iam_requests(line: dict[str, Any]) -> list[Request]:
    """The IAM actions and resources AWS would authorise for one logged request."""
    service, key = line["service"], line["key"]
    if service == "s3":
        pairs: Iterable[tuple[str, str]] = _s3(line["method"], line["path"], line["query"])
    elif service == "dynamodb":
        pairs = _dynamodb(line["target"], json.loads(line["body"] or "{}"))
    elif service == "sqs":
        params = json.loads(line["body"] or "{}")
        queue = params.get("QueueUrl") or params.get("QueueName", "")
        # SQS authorises SendMessageBatch as SendMessage, and so on for each batch.
        action = line["target"].removesuffix("Batch")
        pairs = [("sqs:" + action, _queue_arn(queue))]
    elif service == "ses":
        params = {k: v[0] for k, v in parse_qs(line["body"]).items()}
        action = params.get("Action", "")
        identity = params.get("Source", "").rpartition("<")[2].rstrip(">")
        pairs = [(f"ses:{action}", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{identity}")]
    else:
        pairs = [(f"{service}:{line['target'] or line['method']}", "*")]
    return [Request(key, action, resource) for action, resource in pairs]


def _matches(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allows(policy: dict[str, Any], request: Request) -> bool:
    """Whether ``policy`` (Allow statements without conditions) grants ``request``:
    an action matches case-insensitively, a resource exactly, both with wildcards."""
    for statement in _listed_statements(policy):
        assert statement.get("Effect") == "Allow" and "Condition" not in statement, statement
        actions = _listed(statement["Action"])
        if not any(_matches(a.lower(), request.action.lower()) for a in actions):
            continue
        if any(_matches(r, request.resource) for r in _listed(statement["Resource"])):
            return True
    return False


def _listed_statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    statements = policy["Statement"]
    return [statements] if isinstance(statements, dict) else list(statements)
