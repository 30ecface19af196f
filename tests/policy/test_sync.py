"""Sync against the policy server emulator: 200, 304, faults, keys, rollback, last known good."""

from __future__ import annotations

import json

import pytest

from mcp_proxy.policy import store
from tests._support.policy_docs import NOW, approved, make_doc, tool

pytestmark = pytest.mark.anyio

LIST = tool("pd.list_incidents", read_only=True)
CREATE = tool("pd.create_incident")


async def test_200_then_304_with_etag(harness, policy_server):
    app, url = policy_server
    app.state.document = json.dumps(make_doc(tools={LIST.key: approved(LIST)})).encode()
    engine = harness.engine(url)
    first = await engine.sync(facts=[LIST, CREATE], user="alice@example.com")
    assert (first.result, first.revision, first.newly_available) == ("activated", "r1", ("pd_list_incidents",))
    assert engine.decide(LIST, "alice@example.com").allowed
    second = await engine.sync()
    assert second.result == "not_modified"
    assert app.state.requests[0]["if_none_match"] is None
    assert app.state.requests[1]["if_none_match"] and app.state.requests[1]["status"] == 304
    activated = harness.named("policy.activated")
    assert len(activated) == 1 and activated[0]["policy.revision"] == "r1" and activated[0]["policy.signer"] is None


async def test_new_revision_reports_what_changed(harness, policy_server):
    app, url = policy_server
    app.state.document = json.dumps(make_doc(tools={LIST.key: approved(LIST)})).encode()
    engine = harness.engine(url)
    await engine.sync()
    r2 = make_doc("r2", issued=NOW - 60, tools={CREATE.key: approved(CREATE, "write")})
    app.state.document = json.dumps(r2).encode()
    report = await engine.sync(facts=[LIST, CREATE], user="alice@example.com")
    assert report.result == "activated" and (report.previous_revision, report.revision) == ("r1", "r2")
    assert report.newly_available == ("pd_create_incident",)
    assert report.no_longer_available == ("pd_list_incidents",)


@pytest.mark.parametrize("fault,expected", [("500", "HTTP 500"), ("garbage", "not UTF-8"), ("401", "credentials"),
                                            ("404", "HTTP 404")])
async def test_faults_keep_the_last_good_policy(harness, policy_server, fault, expected):
    app, url = policy_server
    app.state.document = json.dumps(make_doc(tools={LIST.key: approved(LIST)})).encode()
    engine = harness.engine(url)
    assert (await engine.sync()).result == "activated"
    app.state.fault = fault
    report = await engine.sync()
    assert not report.ok and expected in report.message
    assert engine.revision == "r1" and engine.decide(LIST, None).allowed


async def test_timeout_keeps_the_last_good_policy(harness, policy_server):
    app, url = policy_server
    first = harness.engine(url, timeout=10)  # a loaded machine must not turn the good fetch into a timeout
    assert (await first.sync()).ok
    engine = harness.engine(url, timeout=0.3)
    engine.load_cached()
    app.state.fault = "slow"
    report = await engine.sync()
    assert report.result == "failed" and "did not answer within 0.3 s" in report.message
    assert engine.revision == "r1"


async def test_garbage_with_no_policy_explains_itself(harness, policy_server):
    app, url = policy_server
    app.state.fault = "garbage"
    engine = harness.engine(url)
    report = await engine.sync()
    assert report.result == "rejected" and engine.revision is None
    decision = engine.decide(LIST, None)
    assert decision.code == "no_policy" and "refused" in decision.message
    assert len(harness.named("policy.rejected")) == 1
    await engine.sync()  # the same bad document again is recorded once
    assert len(harness.named("policy.rejected")) == 1


async def test_503_retry_after_is_reported(harness, policy_server):
    app, url = policy_server
    app.state.fault, app.state.retry_after = "503", 7
    report = await harness.engine(url).sync()
    assert report.result == "failed" and report.retry_after == 7


async def test_server_down_at_start_without_and_with_cache(harness, policy_server, keys):
    from mcp_proxy.sandbox.asgi_thread import free_port

    down = f"http://127.0.0.1:{free_port()}/policy.jws"
    engine = harness.engine(down)
    engine.load_cached()
    report = await engine.sync()
    assert report.result == "failed" and "cannot connect" in report.message
    assert engine.decide(LIST, None).code == "no_policy"
    assert "could not be fetched" in engine.status().problem

    # a previous run cached a good policy: enforce it offline
    app, url = policy_server
    app.state.document = keys.sign(make_doc(tools={LIST.key: approved(LIST)}))
    online = harness.engine(url, public_keys=(keys.ed_public,))
    assert (await online.sync()).result == "activated"
    offline = harness.engine(down, public_keys=(keys.ed_public,))
    offline.load_cached()
    assert offline.revision == "r1" and offline.decide(LIST, None).allowed
    assert (await offline.sync()).result == "failed" and offline.decide(LIST, None).allowed
    status = offline.status()
    assert status.loaded_from == "cache" and status.verified_by and status.problem is None
    assert status.etag is None  # the cached ETag belongs to another source


@pytest.mark.parametrize("attack", ["tampered", "wrong_key", "unsigned", "alg_none"])
async def test_bad_signatures_are_never_activated(harness, policy_server, keys, attack):
    from mcp_proxy.policy.signature import b64url_encode

    app, url = policy_server
    good = make_doc(tools={LIST.key: approved(LIST)})
    app.state.document = keys.sign(good)
    engine = harness.engine(url, public_keys=(keys.ed_public,))
    assert (await engine.sync()).result == "activated"
    evil = make_doc("r2", issued=NOW, tools={LIST.key: approved(LIST), CREATE.key: approved(CREATE, "write")})
    if attack == "tampered":
        header, _, sig = keys.sign(good).decode().split(".")
        body = f"{header}.{b64url_encode(json.dumps(evil).encode())}.{sig}".encode()
    elif attack == "wrong_key":
        body = keys.sign(evil, keys.other_private)
    elif attack == "unsigned":
        body = json.dumps(evil).encode()
    else:
        none_header = b64url_encode(json.dumps({"alg": "none"}).encode())
        body = f"{none_header}.{b64url_encode(json.dumps(evil).encode())}.".encode()
    app.state.document = body
    report = await engine.sync(facts=[LIST, CREATE], user=None)
    assert report.result == "rejected" and report.newly_available == ()
    assert engine.revision == "r1" and not engine.decide(CREATE, None).allowed
    assert harness.named("policy.rejected")[0]["policy.active_revision"] == "r1"
    # a new process starts from the cache: still the good revision
    restarted = harness.engine(url, public_keys=(keys.ed_public,))
    restarted.load_cached()
    assert restarted.revision == "r1"


async def test_signed_without_keys_is_accepted_but_reported_unverified(harness, policy_server, keys):
    app, url = policy_server
    app.state.document = keys.sign(make_doc())
    engine = harness.engine(url)
    assert (await engine.sync()).result == "activated"
    status = engine.status()
    assert status.signed and status.verified_by is None and "not verified" in status.summary()


async def test_older_or_expired_documents_are_refused(harness, policy_server):
    app, url = policy_server
    app.state.document = json.dumps(make_doc("r5", issued=NOW - 60)).encode()
    engine = harness.engine(url)
    await engine.sync()
    app.state.document = json.dumps(make_doc("r4", issued=NOW - 7200)).encode()
    report = await engine.sync()
    assert report.result == "rejected" and "issued before" in report.message and engine.revision == "r5"
    app.state.document = json.dumps(make_doc("r6", issued=NOW - 7200, expires=NOW - 1)).encode()
    report = await engine.sync()
    assert report.result == "rejected" and "expired" in report.message and engine.revision == "r5"


async def test_file_source_and_relative_paths(harness, write_policy):
    path = write_policy(make_doc(tools={LIST.key: approved(LIST)}))
    engine = harness.engine(path)
    assert (await engine.sync()).result == "activated"
    assert (await engine.sync()).result == "not_modified"
    write_policy(make_doc("r2", issued=NOW - 30))
    assert (await engine.sync()).revision == "r2"
    harness.paths.config_dir.mkdir(parents=True)
    (harness.paths.config_dir / "p.json").write_text(json.dumps(make_doc("rel")))
    relative = harness.engine("p.json")
    assert (await relative.sync()).revision == "rel"
    missing = await harness.engine("nope.json").sync()
    assert missing.result == "failed" and "does not exist" in missing.message


async def test_headers_from_secret_references_are_sent(harness, policy_server, monkeypatch):
    from mcp_proxy.config import SecretRef

    app, url = policy_server
    monkeypatch.setenv("POLICY_TOKEN", "Bearer s3cret-value")
    engine = harness.engine(url, headers={"Authorization": SecretRef("env", "POLICY_TOKEN", "policy.headers")})
    assert (await engine.sync()).ok and app.state.requests[-1]["authorization"]
    monkeypatch.delenv("POLICY_TOKEN")
    report = await harness.engine(url, headers={
        "Authorization": SecretRef("env", "POLICY_TOKEN", "policy.headers.Authorization")}).sync()
    assert report.result == "failed" and "POLICY_TOKEN is not set" in report.message
    assert "s3cret" not in report.message


async def test_cache_is_atomic_and_a_torn_file_is_ignored(harness, policy_server):
    app, url = policy_server
    engine = harness.engine(url)
    await engine.sync()
    path = store.cache_path(harness.paths.policy_dir)
    cached = json.loads(path.read_text())
    assert cached["etag"] and cached["document"].startswith("{")
    assert [p.name for p in harness.paths.policy_dir.iterdir()] == [path.name]  # no temp files left
    path.write_text(path.read_text()[: len(path.read_text()) // 2])  # torn
    restarted = harness.engine(url)
    restarted.load_cached()
    assert restarted.revision is None and "damaged" in restarted.status().problem
    assert restarted.decide(LIST, None).code == "no_policy"
    assert (await restarted.sync()).result == "activated"  # the next good fetch repairs it
    assert json.loads(path.read_text())["document"] == cached["document"]


async def test_cached_document_is_verified_again_on_load(harness, policy_server, keys):
    app, url = policy_server
    engine = harness.engine(url)  # no keys: an unsigned policy is cached
    await engine.sync()
    strict = harness.engine(url, public_keys=(keys.ed_public,))
    strict.load_cached()
    assert strict.revision is None and "not signed" in strict.status().problem
    assert harness.named("policy.rejected")[-1]["origin"] == "cached"
