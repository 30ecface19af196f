"""Built-in REST connectors: Statuspage, Opsgenie, PagerDuty."""
