"""The benchmark's capacity units of batch calls that DynamoDB answered in part: the
items and keys it left unprocessed, and a refused call, are not billed."""

from __future__ import annotations

from benchmarks.aws_units import Ledger, read_units, write_units


def item(key: str, size: int = 10) -> dict[str, dict[str, str]]:
    return {"id": {"S": key}, "v": {"S": "x" * size}}


def test_unprocessed_items_of_a_batch_write_cost_nothing() -> None:
    requests = [{"PutRequest": {"Item": item(k, 1500)}} for k in ("a", "b", "c")]
    params = {"RequestItems": {"t": requests}}
    parsed = {"UnprocessedItems": {"t": requests[1:]}}
    ledger = Ledger()
    assert write_units("BatchWriteItem", params, parsed, True, ledger, {}) == (2, 0)
    assert ledger.get("t", {"id": {"S": "a"}}) is not None
    assert ledger.get("t", {"id": {"S": "b"}}) is None
    refused = write_units("BatchWriteItem", params, {"Error": {}}, False, Ledger(), {})
    assert refused == (0, 0)


def test_unprocessed_keys_of_a_batch_get_cost_nothing() -> None:
    keys = [{"id": {"S": k}} for k in ("a", "b", "c", "d")]
    params = {"RequestItems": {"t": {"Keys": keys, "ConsistentRead": True}}}
    parsed = {
        "Responses": {"t": [item("a", 5000)]},  # 2 units; "b" absent: 1
        "UnprocessedKeys": {"t": {"Keys": keys[2:]}},
    }
    assert read_units("BatchGetItem", params, parsed) == 3
    assert read_units("BatchGetItem", params, {}, ok=False) == 0
