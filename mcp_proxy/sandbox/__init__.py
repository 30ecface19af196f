"""Local stand-ins for the vendors, the OAuth server, the policy server and the
collector, for `demo`, for people trying the proxy without accounts, and for
the tests. Never imported on the `serve` path."""
