"""community-gateway: a smart-community IoT edge gateway (MQTT → spool → InfluxDB)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
