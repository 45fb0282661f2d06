"""Field-bus and vendor protocols other than the MQTT contract (e.g. GB/T 26875.3 panels)."""
