"""`python -m mcp_proxy.sandbox.jsm --port N`: the JSM Operations emulator on 127.0.0.1."""

from __future__ import annotations

import argparse

from mcp_proxy.sandbox.jsm import create_app, seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--processing-polls", type=int, default=1)
    options = parser.parse_args()
    import uvicorn

    print(f"JSM Operations emulator on http://{options.host}:{options.port}; cloud id {seed.CLOUD_ID}; "
          f"Basic {seed.EMAIL} with the token in mcp_proxy/sandbox/jsm/seed.py", flush=True)
    uvicorn.run(create_app(processing_polls=options.processing_polls), host=options.host, port=options.port,
                log_level="warning")


if __name__ == "__main__":
    main()
