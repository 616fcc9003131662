"""The TaskRepository and WorkerRegistry ports on Amazon DynamoDB (boto3).

One table holds four kinds of item, told apart by their partition key (the design,
and why it scales, is in docs/aws.md):

===============  ==========================  ==========  ====================================
item             pk                          sk          notes
===============  ==========================  ==========  ====================================
task             ``TASK#<id>``               ``TASK``    every Task field; GSI keys below
counts           ``COUNTS``                  ``COUNTS``  ``n_<STATUS>``, stream checkpoint, lease
worker           ``WORKERS``                 ``<id>``    WorkerInfo, ``live_until``
idempotency key  ``IDEM#<key>``              ``IDEM``    task id, fingerprint, claim expiry
===============  ==========================  ==========  ====================================

Task items carry the sparse GSI keys ``gsi1pk = STATUS#<status>#<shard>`` (shard: a
stable hash of the id) and ``gsi1sk = <created_at UTC>#<id>``, so listing one status
reads ``index_shards`` partitions in parallel instead of one hot partition.

Held tasks (stored without a queue message, due later than SQS can delay one) also
carry ``heldpk = HELD#<shard>`` (a stable hash of the id, ``HELD_SHARDS`` partitions)
and ``heldsk = <run_at UTC>#<id>``, the keys of the sparse GSI ``held``: every other
item lacks them, so the index holds the held tasks only, ordered by due time, and the
due ones are found with one Query per shard, never a Scan.

Counts are exact, and trail the writes by about 2 s: one aggregator at a time counts
the table's stream into the counts item (``stream_counts``); no task write touches it.

The adapters are handed a low-level boto3 client and never create one. botocore's retry
mode retries throttling and 5xx answers; what still fails becomes
``InfrastructureError("dynamodb", ...)``.

================  ==================================================================
module            holds
================  ==================================================================
``repository``    ``DynamoDbTaskRepository``: get one task; the rest from the two below
``writes``        add, add with an idempotency key, the conditional transition
``claims``        the claim of a due PENDING task in one UpdateItem (``ALL_NEW``)
``queries``       a page of one status, the due held tasks, the counts per status
``workers``       ``DynamoDbWorkerRegistry``
``task_table``    the table and settings the writes and queries share
``task_items``    a Task as an item and back, with its index keys and expiry
``attributes``    attribute values to and from Python values
``table``         key and index names (``adapters/aws_provision.py`` uses them)
``calls``         one call with its errors translated; a Query page by page
================  ==================================================================
"""

from adapters.dynamodb.repository import DynamoDbTaskRepository
from adapters.dynamodb.table import GSI1, GSI1_PK, HELD_INDEX, TTL_ATTRIBUTE
from adapters.dynamodb.workers import DynamoDbWorkerRegistry

__all__ = [
    "GSI1",
    "GSI1_PK",
    "HELD_INDEX",
    "TTL_ATTRIBUTE",
    "DynamoDbTaskRepository",
    "DynamoDbWorkerRegistry",
]
