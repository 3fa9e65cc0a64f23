"""Stream capture: demux RTSP packets, keep packet stats, sample frames; reader processes and their load governor."""

from agent.stream.frames import Frame, FrameSink
from agent.stream.reader import CameraReader
from agent.stream.stats import StreamSnapshot

__all__ = ["CameraReader", "Frame", "FrameSink", "StreamSnapshot"]
