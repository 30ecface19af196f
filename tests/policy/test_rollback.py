"""The policy never goes back in time: a validly signed but older document, swapped into the cache or served
by the policy server, is never activated again once a newer one was (the high-water mark), and a cached ETag
is used only with the document it came with, so a 304 cannot keep an older document active."""

from __future__ import annotations

import json
import logging

import pytest

from mcp_proxy.policy import store
from tests._support.policy_docs import NOW, approved, make_doc, tool

pytestmark = pytest.mark.anyio

LIST = tool("pd.list_incidents", read_only=True)
CREATE = tool("pd.create_incident")
# r1 approved more (a write tool); r2, issued later, took it away: r1 is what a rollback would want back
R1 = make_doc("r1", issued=NOW - 7200, tools={LIST.key: approved(LIST), CREATE.key: approved(CREATE, "write")})
R2 = make_doc("r2", issued=NOW - 600, tools={LIST.key: approved(LIST)})


async def _r1_then_r2(harness, keys, app, url):
    app.state.document = keys.sign(R1)
    engine = harness.engine(url, public_keys=(keys.ed_public,))
    assert (await engine.sync()).revision == "r1"
    r1_raw = json.loads(store.cache_path(harness.paths.policy_dir).read_text())["document"]
    app.state.document = keys.sign(R2)
    assert (await engine.sync()).revision == "r2"
    return engine, r1_raw


async def test_an_older_document_swapped_into_the_cache_is_refused(harness, policy_server, keys, caplog):
    app, url = policy_server
    running, r1_raw = await _r1_then_r2(harness, keys, app, url)
    path = store.cache_path(harness.paths.policy_dir)
    cached = json.loads(path.read_text())
    cached["document"] = r1_raw  # validly signed, older; the ETag stays the one of r2
    path.write_text(json.dumps(cached))

    # the running process: the server answers 304 to r2's ETag, and r2 stays
    assert (await running.sync()).result == "not_modified"
    assert running.revision == "r2" and not running.decide(CREATE, None).allowed

    # the next start: the swapped copy is refused and reported, nothing older is enforced
    restarted = harness.engine(url, public_keys=(keys.ed_public,))
    with caplog.at_level(logging.WARNING, logger="mcp_proxy"):
        restarted.load_cached()
    assert restarted.revision != "r1" and not restarted.decide(CREATE, None).allowed
    refused = harness.named("policy.rejected")[-1]
    assert refused["origin"] == "cached" and "r1" in refused["reason"] and "r2" in refused["reason"]
    assert "issued before" in refused["reason"] and "replaced" in refused["reason"]
    assert any("policy refused (cached)" in r.getMessage() and "r1" in r.getMessage() for r in caplog.records)

    # the next sync: the swapped file's ETag (r2's) is not trusted for r1, so no 304 keeps r1
    requests_before = len(app.state.requests)
    report = await restarted.sync(facts=[LIST, CREATE])
    assert app.state.requests[requests_before]["if_none_match"] is None
    assert report.ok and restarted.revision == "r2"
    assert restarted.decide(LIST, None).allowed and not restarted.decide(CREATE, None).allowed
    assert json.loads(path.read_text())["document"] != r1_raw  # the cache holds r2 again

    # and after that, a 304 is trusted again: the ETag is stored with r2's digest
    assert (await restarted.sync()).result == "not_modified" and restarted.revision == "r2"
    again = harness.engine(url, public_keys=(keys.ed_public,))
    again.load_cached()
    assert again.revision == "r2" and again.status().etag


async def test_the_server_serving_an_older_revision_than_the_mark_is_refused(harness, policy_server, keys):
    app, url = policy_server
    await _r1_then_r2(harness, keys, app, url)
    store.cache_path(harness.paths.policy_dir).unlink()  # a new process with nothing cached yet
    app.state.document = keys.sign(R1)  # the server (or whoever answers for it) goes back to r1
    engine = harness.engine(url, public_keys=(keys.ed_public,))
    engine.load_cached()
    report = await engine.sync(facts=[LIST, CREATE])
    assert report.result == "rejected" and "issued before revision r2" in report.message
    assert engine.revision is None and not engine.decide(CREATE, None).allowed
    refused = harness.named("policy.rejected")[-1]
    assert refused["origin"] == "fetched" and "r1" in refused["reason"]
    assert not store.cache_path(harness.paths.policy_dir).exists()  # and it was not cached

    app.state.document = keys.sign(make_doc("r3", issued=NOW - 60, tools={LIST.key: approved(LIST)}))
    assert (await engine.sync()).revision == "r3"  # anything issued later is activated as before


async def test_a_cached_document_without_its_mark_is_not_trusted(harness, policy_server, keys):
    app, url = policy_server
    _running, r1_raw = await _r1_then_r2(harness, keys, app, url)
    path = store.cache_path(harness.paths.policy_dir)
    cached = json.loads(path.read_text())
    cached["document"] = r1_raw
    path.write_text(json.dumps(cached))
    store.mark_path(harness.paths.data_dir / "state").unlink()  # the mark removed with the swap
    engine = harness.engine(url, public_keys=(keys.ed_public,))
    engine.load_cached()
    assert engine.revision is None and not engine.decide(CREATE, None).allowed
    assert "high-water mark" in harness.named("policy.rejected")[-1]["reason"]
    assert (await engine.sync()).revision == "r2"
