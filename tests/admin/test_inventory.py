"""The inventory readers, on files made with the proxy's own encoders: OTLP/HTTP JSON (the OpenTelemetry
Collector's file exporter), NDJSON, and real `tools --all --json` output."""

from __future__ import annotations

import gc
import gzip
import json
import os
import subprocess
import sys

from mcp_proxy.admin.inventory import read_inventory
from mcp_proxy.policy.definition import definition_hash
from tests._support.admin import discovered, tool_def, write_ndjson_file, write_otlp_file

NOTE = tool_def("add_note", "Add a note.")
NOTE_V2 = tool_def("add_note", "Add a note, and page everyone.", annotations={"destructiveHint": True})
LIST = tool_def("list_incidents", "List incidents.", annotations={"readOnlyHint": True})


def test_otlp_file_exporter_lines_merge_by_tool_hash_user_and_time(tmp_path):
    path = write_otlp_file(tmp_path / "logs.json", [
        [discovered("pd", [NOTE, LIST], "alice@example.com", "2026-11-20T10:00:00.123456Z", host="a-mac")],
        [discovered("pd", [NOTE, LIST], "bob@example.com", "2026-11-21T08:00:00Z", host="b-mac"),
         discovered("pd", [NOTE_V2, LIST], "Alice@Example.com", "2026-11-22T09:30:00Z", host="a-mac")],
    ])
    inv = read_inventory([path])
    assert inv.records == 3 and set(inv.tools) == {"pd.add_note", "pd.list_incidents"}
    note = inv.tools["pd.add_note"]
    assert set(note.versions) == {definition_hash(NOTE), definition_hash(NOTE_V2)}
    old = note.versions[definition_hash(NOTE)]
    assert set(old.users) == {"alice@example.com", "bob@example.com"}
    assert old.users["alice@example.com"].first == "2026-11-20T10:00:00Z"
    assert (old.first, old.last) == ("2026-11-20T10:00:00Z", "2026-11-21T08:00:00Z")
    assert old.hosts == {"a-mac", "b-mac"}
    new = note.latest()
    assert new.sha256 == definition_hash(NOTE_V2) and new.annotations == {"destructiveHint": True}
    assert set(new.users) == {"alice@example.com"} and new.exposed == "pd_add_note"
    assert (note.first, note.last) == ("2026-11-20T10:00:00Z", "2026-11-22T09:30:00Z")
    listing = inv.tools["pd.list_incidents"]
    assert len(listing.versions) == 1 and listing.users() == {"alice@example.com", "bob@example.com"}
    assert listing.latest().annotations == {"readOnlyHint": True}


def test_ndjson_spool_lines_other_events_and_garbage_are_skipped_not_fatal(tmp_path):
    other = {**discovered("og", [NOTE], "carol@example.com", "2026-11-20T10:00:00Z"), "event_name": "mcp.tool.call"}
    path = write_ndjson_file(tmp_path / "spool.ndjson",
                             [other, discovered("og", [NOTE], "carol@example.com", "2026-11-20T10:00:00Z")])
    with path.open("a") as f:
        f.write("not json at all\n")
    gz = tmp_path / "more.ndjson.gz"
    gz.write_bytes(gzip.compress(write_ndjson_file(tmp_path / "x.tmp", [
        discovered("og", [NOTE], "dave@example.com", "2026-11-23T10:00:00Z")]).read_bytes()))
    inv = read_inventory([path, gz])
    assert (inv.records, inv.other_events, inv.skipped) == (2, 1, 1)
    assert set(inv.tools["og.add_note"].latest().users) == {"carol@example.com", "dave@example.com"}


def test_a_directory_is_read_recursively_and_full_definitions_are_kept_only_when_the_hash_matches(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    record = discovered("pd", [NOTE], "alice@example.com", "2026-11-20T10:00:00Z", full=True)
    forged = discovered("pd", [LIST], "eve@example.com", "2026-11-20T10:00:00Z", full=True)
    forged["tools"][0]["description"] = "Something else than what was hashed."
    write_ndjson_file(tmp_path / "a" / "b" / "c.jsonl", [record, forged])
    inv = read_inventory([tmp_path])
    assert inv.tools["pd.add_note"].latest().definition["description"] == "Add a note."
    assert inv.tools["pd.list_incidents"].latest().definition is None


def test_tools_all_json_output_of_the_real_cli(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[user]\nemail = "admin@example.com"\n[secrets]\nstore = "file"\n'
                      '[upstreams.sp]\nkind = "statuspage"\napi_key = "env:SP_KEY"\npage_id = "p1"\n')
    env = {**os.environ, "MCP_ACCESS_PROXY_HOME": str(tmp_path / "home"), "SP_KEY": "x"}
    out = subprocess.run([sys.executable, "-m", "mcp_proxy", "tools", "--all", "--json", "--config", str(config)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["tools"]
    (tmp_path / "alice-tools.json").write_text(out.stdout)
    inv = read_inventory([tmp_path / "alice-tools.json"])
    assert set(inv.tools) == {r["key"] for r in rows} and rows
    first = rows[0]
    version = inv.tools[first["key"]].versions[first["sha256"]]
    assert version.sources == {"alice-tools.json"} and not version.users and version.builtin
    assert version.exposed == first["exposed_name"] and version.last


def test_a_collector_file_of_every_event_counts_the_others_and_reads_text_that_is_not_utf8(tmp_path):
    call = {**discovered("pd", [LIST], "bob@example.com", "2026-11-20T10:00:00Z"), "event_name": "mcp.tool.call"}
    path = write_otlp_file(tmp_path / "logs.json", [
        [call],  # a line of other events only: counted without being decoded
        [call, discovered("pd", [NOTE], "bob@example.com", "2026-11-21T10:00:00Z")],  # mixed in one request
    ])
    titled = discovered("og", [tool_def("page", "Page someone.", title="PAGE-TITLE")], "eve@example.com",
                        "2026-11-22T10:00:00Z")
    with path.open("ab") as f:  # a NDJSON line with a byte that is not UTF-8 in a title
        f.write(json.dumps(titled).encode().replace(b"PAGE-TITLE", b"Page \xff") + b"\n")
    gc.enable()
    inv = read_inventory([path])
    assert gc.isenabled()  # paused while reading only
    assert (inv.records, inv.other_events, inv.skipped) == (2, 2, 0)
    assert set(inv.tools) == {"pd.add_note", "og.page"} and inv.tools["og.page"].latest().title == "Page \ufffd"
