"""Service levels: what the gateway measured against each API's SLA (stored per minute), the
compliance the API answers from it, and the Prometheus alerting rules generated from the SLAs."""
