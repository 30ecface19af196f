"""Time you can trust: with the laptop's clock set back, expiry is judged against the latest of the local
clock, the newest issued_at activated and the Date of the policy server's and the collector's answers, and
that trusted time is persisted, so a restart remembers it."""

from __future__ import annotations

import logging

import pytest

from mcp_proxy import trusted_time
from mcp_proxy.trusted_time import TrustedTime
from tests._support.dated_server import DatedServer
from tests._support.policy_docs import NOW, approved, make_doc, tool

pytestmark = pytest.mark.anyio

LIST = tool("pd.list_incidents", read_only=True)
DAY = 86400.0
WEEK = 7 * DAY
# valid during the week before NOW, expired a day before NOW
LAST_WEEK = make_doc("r-last-week", issued=NOW - 8 * DAY, expires=NOW - DAY, tools={LIST.key: approved(LIST)})


@pytest.fixture(autouse=True)
def _forget_observations():
    """The collector test feeds this process a made-up Date: forget it, so no later test sees it."""
    trusted_time.forget()
    yield
    trusted_time.forget()


async def test_a_set_back_clock_does_not_activate_an_expired_document(harness, keys):
    harness.clock.now = NOW - WEEK  # the laptop's clock set back a week: the document looks valid to it
    with DatedServer(keys.sign(LAST_WEEK), date=NOW) as server:  # the policy server says what time it is
        engine = harness.engine(server.url + "/policy.jws", public_keys=(keys.ed_public,))
        report = await engine.sync(facts=[LIST])
    assert report.result == "rejected" and "expired" in report.message
    assert engine.revision is None and not engine.decide(LIST, None).allowed
    assert harness.named("policy.rejected")[-1]["origin"] == "fetched"


async def test_the_servers_date_expires_a_cached_document_and_a_restart_remembers_it(harness, keys):
    harness.clock.now = NOW - WEEK
    with DatedServer(keys.sign(LAST_WEEK), date=NOW - WEEK) as server:  # a week ago, all clocks agreed
        url = server.url + "/policy.jws"
        engine = harness.engine(url, public_keys=(keys.ed_public,))
        assert (await engine.sync()).result == "activated" and engine.decide(LIST, None).allowed
        server.date = NOW  # a week later; the laptop's clock was set back by as much
        assert (await engine.sync()).result == "not_modified"
    assert engine.decide(LIST, None).code == "expired" and engine.status().expired
    assert harness.named("policy.expired")

    # a restart, offline, with the clock still set back: the persisted Date says the cached copy expired
    restarted = harness.engine(url, public_keys=(keys.ed_public,))
    restarted.load_cached()
    assert restarted.revision == "r-last-week"
    assert restarted.decide(LIST, None).code == "expired"
    assert "expired" in (restarted.status().problem or "")
    assert TrustedTime(harness.paths.data_dir, harness.paths.locks_dir).now(NOW - WEEK) >= NOW


async def test_issued_after_the_local_clock_but_consistent_with_trusted_time(harness, keys, caplog):
    """The laptop's clock is a week behind; the server's Date agrees with the document: it is activated (the
    signature vouches for issued_at), a warning says the clock is behind, and its expiry is judged against
    the trusted time, not the local clock."""
    harness.clock.now = NOW - WEEK
    current = make_doc("r-now", issued=NOW - 3600, expires=NOW + DAY, tools={LIST.key: approved(LIST)})
    with DatedServer(keys.sign(current), date=NOW) as server:
        engine = harness.engine(server.url + "/policy.jws", public_keys=(keys.ed_public,))
        with caplog.at_level(logging.WARNING, logger="mcp_proxy"):
            assert (await engine.sync()).result == "activated"
    assert engine.decide(LIST, None).allowed
    assert any("clock is behind" in r.getMessage() for r in caplog.records)
    assert engine.status().age_seconds < 2 * 3600  # an hour old by trusted time, not "issued in the future"
    assert engine.now() >= NOW


async def test_issued_at_alone_is_evidence_when_no_server_gives_a_date(harness, keys, write_policy):
    """A file source has no Date: the newest issued_at activated is the floor, so the laptop's clock set back
    before it does not revive a document that expired before that issued_at."""
    newer = make_doc("r2", issued=NOW - 60, expires=NOW + DAY, tools={LIST.key: approved(LIST)})
    engine = harness.engine(write_policy(keys.sign(newer)), public_keys=(keys.ed_public,))
    assert (await engine.sync()).revision == "r2"
    harness.clock.now = NOW - WEEK
    fresh = TrustedTime(harness.paths.data_dir, harness.paths.locks_dir)
    assert fresh.now(NOW - WEEK) >= NOW - 60  # persisted: a restart knows it


async def test_the_collectors_date_counts_and_is_persisted(harness, keys, write_policy):
    from mcp_proxy.audit.transport import Sender

    harness.clock.now = NOW - WEEK
    engine = harness.engine(write_policy(keys.sign(LAST_WEEK)), public_keys=(keys.ed_public,))
    engine.load_cached()
    with DatedServer(date=NOW) as collector:
        sender = Sender(collector.url, "ndjson", {}, use_gzip=False, scrub=lambda s: s)
        try:
            assert (await sender.send(b'{"id": "1"}\n')).kind == "ok"
        finally:
            await sender.aclose()
    assert engine.now() >= NOW
    report = await engine.sync()  # the document expired a day before the collector's Date
    assert report.result == "rejected" and "expired" in report.message
    trusted_time.forget()  # a restart: this process's memory is gone, the file stays
    assert TrustedTime(harness.paths.data_dir, harness.paths.locks_dir).now(NOW - WEEK) >= NOW


def test_dates_that_cannot_be_read_are_ignored(tmp_path):
    clock = TrustedTime(tmp_path / "data", tmp_path / "locks")
    for header in (None, "", "yesterday", "Tue, 99 Foo 2026 99:99:99 GMT", "2026-12-01T00:00:00"):
        clock.observe_http_date("policy_server", header)
    assert clock.floor() is None and clock.now(123.0) == 123.0
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / trusted_time.STATE_FILE).write_text("{not json")
    assert TrustedTime(tmp_path / "data", tmp_path / "locks").now(123.0) == 123.0  # damaged: local clock only
