"""The fake MCP upstream of tests/gateway/fake_upstream.py, whose `echo` definition a test changes while it runs.

    python changing_upstream.py [fake_upstream flags]

Each time the tools are listed, the JSON object in the file named by $FAKE_ECHO_OVERRIDE (if it exists) is
merged into echo's definition (its "annotations" into echo's annotations). Calling the `grow` tool makes the
upstream announce list_changed, so the proxy lists again and sees the change.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

_spec = importlib.util.spec_from_file_location("fake_upstream", Path(__file__).parents[1] / "gateway" /
                                               "fake_upstream.py")
assert _spec is not None and _spec.loader is not None
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)
_plain_tool = fake.tool


def _tool(name: str, description: str, schema: dict, read_only: bool = False) -> dict[str, Any]:
    tool = _plain_tool(name, description, schema, read_only)
    path = os.environ.get("FAKE_ECHO_OVERRIDE")
    if name != "echo" or not path or not os.path.exists(path):
        return tool
    override = json.loads(Path(path).read_text())
    return {**tool, **override, "annotations": {**tool["annotations"], **override.get("annotations", {})}}


fake.tool = _tool  # build() looks the function up at each listing

if __name__ == "__main__":
    sys.exit(fake.main())
