"""Helpers the tests share: classes, functions and constants, one module per area.

The per-area fixture files hold only fixtures and take their helpers from here; test modules use these
modules directly, never a fixture file.
"""
