"""mcp-access-proxy: a governed MCP gateway that runs on the laptop.

Keep this module empty of imports: the console script imports it before the
stdio guard has claimed stdout, and every import here costs start-up time.
"""

__version__ = "0.1.0"
