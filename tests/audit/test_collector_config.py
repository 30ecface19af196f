"""client-configs/otel-collector.yaml: an OTLP/HTTP receiver on 4318 and a durable, never-giving-up queue."""

from __future__ import annotations

from pathlib import Path

import yaml

CONFIG = Path(__file__).resolve().parents[2] / "client-configs" / "otel-collector.yaml"


def test_the_example_collector_config_is_wired_and_durable():
    doc = yaml.safe_load(CONFIG.read_text())
    http = doc["receivers"]["otlp"]["protocols"]["http"]
    assert http["endpoint"].endswith(":4318")
    assert http["auth"]["authenticator"] in doc["extensions"]
    (pipeline,) = doc["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["otlp"] and "batch" in pipeline["processors"]
    assert set(pipeline["processors"]) <= set(doc["processors"])
    assert set(pipeline["exporters"]) <= set(doc["exporters"]) and "debug" in pipeline["exporters"]
    assert set(doc["service"]["extensions"]) == set(doc["extensions"])
    queued = [e for e in doc["exporters"].values() if isinstance(e, dict) and "sending_queue" in e]
    assert queued
    for exporter in queued:
        storage = exporter["sending_queue"]["storage"]
        assert doc["extensions"][storage]["fsync"] is True
        assert exporter["retry_on_failure"]["max_elapsed_time"] in ("0s", 0)
    text = CONFIG.read_text()
    assert "# splunk_hec/siem:" in text  # the commented SIEM alternative
    assert "otel-collector.yaml" in (CONFIG.parent / "README.md").read_text()
