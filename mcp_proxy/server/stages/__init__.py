"""The stages of the call pipeline, one concern each; their order is in server/pipeline.py."""
