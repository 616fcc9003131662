"""The endpoints on the dead-letter queue's messages: the operator's path for poison
messages. Each one parses, calls one use case (``domain/dead_letters.py``) and
serialises; errors are mapped in ``errors.py``.

``GET /dead-letters`` and ``POST /dead-letters/redrive`` (``routes.py``) work on FAILED
tasks; these work on the messages themselves, whatever their body.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.dead_letters import DeadLetterMessages
from domain.limits import DEFAULT_DEAD_LETTER_LIST, MAX_DEAD_LETTER_LIST, MAX_MESSAGE_ID_LENGTH
from entrypoints.http.dead_letter_schemas import (
    DeadLetterMessage,
    DeadLetterMessageList,
    MessagesRedriven,
    RedriveMessages,
)
from entrypoints.http.operation import Answer, Param, operation
from entrypoints.http.parsing import limit_param, optional_json_object
from entrypoints.http.responses import JSONResponse
from entrypoints.http.schemas import dump

MESSAGE_ID = Param(
    "message_id",
    "path",
    {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_ID_LENGTH},
    "The message's `message_id`, as `GET /dead-letters/messages` shows it.",
    required=True,
)
LIMIT = Param(
    "limit",
    "query",
    {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_DEAD_LETTER_LIST,
        "default": DEFAULT_DEAD_LETTER_LIST,
    },
)
_ONE = {
    404: "The dead-letter queue holds no message with this id (any more). On SQS, where "
    "a message is found by receiving the queue's messages, one beyond the first 1,000 "
    "looked at is not found either: the error says so.",
    503: "The queue is unavailable: nothing was changed.",
}

_LIST: dict[int, Answer] = {
    200: (DeadLetterMessageList, "The messages, and how many there are."),
    422: "Invalid limit.",
    503: "The queue is unavailable.",
}
_ALL: dict[int, Answer] = {
    200: (MessagesRedriven, "How many were sent back, and how many remain."),
    422: "Invalid limit, or an unknown field.",
    503: "The queue failed part way: the messages sent back so far stay sent; send the "
    "request again for the rest.",
}


class DeadLetterEndpoints:
    def __init__(self, messages: Callable[[], DeadLetterMessages]) -> None:
        """``messages`` gives the use cases (the container's provider)."""
        self._messages = messages

    @operation("listDeadLetterMessages", params=[LIMIT], responses=_LIST)
    async def list_messages(self, request: Request) -> Response:
        """Messages on the dead-letter queue, poison ones included

        Each message as it is: its id, the task it names (null for a poison message),
        why it was dead-lettered, its deliveries, and its body (cut short). Looking
        consumes nothing; on SQS it sees the first `limit` messages SQS gives, in no order.
        """
        limit = limit_param(
            request.query_params.get("limit"),
            default=DEFAULT_DEAD_LETTER_LIST,
            maximum=MAX_DEAD_LETTER_LIST,
        )
        messages = self._messages()
        found = await messages.list(limit=limit)
        body = DeadLetterMessageList(
            messages=[DeadLetterMessage.of(d) for d in found],
            dead_letter_queue_depth=await messages.count(),
        )
        return JSONResponse(dump(body))

    @operation(
        "dropDeadLetterMessage",
        params=[MESSAGE_ID],
        responses={200: (DeadLetterMessage, "The message deleted, as it was."), **_ONE},
    )
    async def drop_message(self, request: Request) -> Response:
        """Delete one message from the dead-letter queue for good

        For a poison message, or one whose task no longer matters. Its task, if any, is
        not changed.
        """
        dropped = await self._messages().drop(request.path_params["message_id"])
        return JSONResponse(dump(DeadLetterMessage.of(dropped)))

    @operation(
        "redriveDeadLetterMessage",
        params=[MESSAGE_ID],
        responses={200: (DeadLetterMessage, "The message sent back, as it was."), **_ONE},
    )
    async def redrive_message(self, request: Request) -> Response:
        """Send one message back to the main queue

        The body goes back as a new message (a new id, received afresh) and leaves the
        dead-letter queue. A worker runs its task if that task is PENDING; a message for
        a finished task is skipped (retry a FAILED task with `POST /tasks/{task_id}/retry`),
        and a poison message comes back here.
        """
        redriven = await self._messages().redrive(request.path_params["message_id"])
        return JSONResponse(dump(DeadLetterMessage.of(redriven)))

    @operation(
        "redriveDeadLetterMessages", body=RedriveMessages, body_required=False, responses=_ALL
    )
    async def redrive_messages(self, request: Request) -> Response:
        """Send the dead-letter queue's messages back to the main queue

        Up to `limit` of them, oldest first where the backend keeps an order, each as a
        new message. `dead_letter_queue_depth` says how many remain.
        """
        body = RedriveMessages.model_validate(await optional_json_object(request))
        messages = self._messages()
        count = await messages.redrive_all(limit=body.limit)
        depth = await messages.count()
        return JSONResponse(dump(MessagesRedriven(count=count, dead_letter_queue_depth=depth)))

    def routes(self) -> list[Route]:
        messages = "/dead-letters/messages"
        return [
            Route(messages, self.list_messages, methods=["GET"], name="dead_letter_messages"),
            # Before the message's own routes: "redrive" is not a message id here.
            Route(
                f"{messages}/redrive",
                self.redrive_messages,
                methods=["POST"],
                name="redrive_dead_letter_messages",
            ),
            Route(
                f"{messages}/{{message_id}}",
                self.drop_message,
                methods=["DELETE"],
                name="drop_dead_letter_message",
            ),
            Route(
                f"{messages}/{{message_id}}/redrive",
                self.redrive_message,
                methods=["POST"],
                name="redrive_dead_letter_message",
            ),
        ]
