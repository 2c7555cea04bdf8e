"""A video file's duration, read the way the decoder reads it, for the index's `duration` column.

`processing` samples frames by duration but does not return it; until it does (a public `video_duration`, or
`load_video` returning it), this opens the file once more through the decoder's own opener, which reads only the
container's header (about a millisecond). URLs are not opened twice: their duration is left unknown.
"""

from __future__ import annotations

from ovmlv.processing.video_decoding import _open_video

from .inputs import is_url


def video_duration(source: str) -> float | None:
    """Seconds of video in the file `source` (None for a URL); `VideoDecodeError` when it cannot be opened."""
    if is_url(source):
        return None
    with _open_video(source) as video:
        return video.duration()
