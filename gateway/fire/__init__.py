"""Fire response. The incident engine is not built yet; the alarm lane feeds `AlarmRecorder`."""

from gateway.fire.recorder import AlarmRecorder

__all__ = ["AlarmRecorder"]
