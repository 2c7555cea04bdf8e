"""Video decoding, frame sampling and the OvmlvProcessor."""

from .processing_ovmlv import OvmlvProcessor
from .video_decoding import VideoDecodeError, decode_frames, load_video, sample_timestamps

OvmlvProcessor.register_for_auto_class("AutoProcessor")

__all__ = ["OvmlvProcessor", "VideoDecodeError", "decode_frames", "load_video", "sample_timestamps"]
