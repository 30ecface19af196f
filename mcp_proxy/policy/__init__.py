"""The approval policy: document, sync, signature, evaluation, definition pinning."""
