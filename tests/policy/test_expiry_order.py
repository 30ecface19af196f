"""A validly signed document that is already expired is refused even when it was issued after the active one:
the active document stays, with its decisions, and the refusal is recorded (not only its message)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from tests._support.policy_docs import NOW, approved, make_doc, tool

pytestmark = pytest.mark.anyio

A = tool("pd.list_incidents", read_only=True)
B = tool("pd.create_incident")
ACTIVE = make_doc("r1", issued=NOW - 3600, expires=NOW + 86400, tools={A.key: approved(A)})
# issued after r1 (so the "never re-activate an older document" rule does not apply), expired a second ago
EXPIRED_NEWER = make_doc("r2", issued=NOW - 60, expires=NOW - 1, tools={B.key: approved(B, "write")})


@pytest.fixture(params=["file", "server"])
def publish(request: pytest.FixtureRequest) -> Callable[[bytes], str]:
    """publish(body) -> the policy source: a policy file or the policy server emulator, which the engine reads
    through its real sync."""
    if request.param == "file":
        return request.getfixturevalue("write_policy")
    app, url = request.getfixturevalue("policy_server")

    def serve(body: bytes) -> str:
        app.state.document = body
        return url

    return serve


async def test_an_expired_document_issued_after_the_active_one_is_refused(harness, keys, publish, caplog):
    source = publish(keys.sign(ACTIVE))
    engine = harness.engine(source, public_keys=(keys.ed_public,))
    assert (await engine.sync(facts=[A, B])).result == "activated"
    assert engine.revision == "r1" and engine.decide(A, None).allowed and not engine.decide(B, None).allowed

    body = keys.sign(EXPIRED_NEWER)
    doc, signed, signer, _alg = engine.checker.check(body)  # the signature is good: only the expiry can refuse it
    assert signed and signer is not None and doc.issued_at > engine.document.issued_at
    publish(body)
    with caplog.at_level(logging.WARNING, logger="mcp_proxy"):
        report = await engine.sync(facts=[A, B])

    assert report.result == "rejected" and report.revision == "r1"
    assert report.newly_available == () and report.no_longer_available == ()
    assert engine.revision == "r1"
    assert engine.decide(A, None).allowed
    assert not engine.decide(B, None).allowed
    assert engine.status().problem is None and not engine.status().expired
    (refused,) = harness.named("policy.rejected")
    assert refused["origin"] == "fetched" and refused["policy.active_revision"] == "r1"
    assert "r2" in refused["reason"] and "expired" in refused["reason"]
    assert [e["policy.revision"] for e in harness.named("policy.activated")] == ["r1"]
    assert harness.named("policy.expired") == []
    assert [r.getMessage() for r in caplog.records if "refused" in r.getMessage()] == [
        f"policy refused (fetched): {refused['reason']}"]

    # the refused document was not cached either: a new process starts from r1
    restarted = harness.engine(source, public_keys=(keys.ed_public,))
    restarted.load_cached()
    assert restarted.revision == "r1" and restarted.decide(A, None).allowed and not restarted.decide(B, None).allowed
