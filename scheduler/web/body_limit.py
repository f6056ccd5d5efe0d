"""Request body limits beyond the default: the paths that take uploads, and how much.

``web/middleware.py`` (``RequestMiddleware``) refuses bodies over the limit with 413: it checks
``Content-Length`` first and also counts the bytes of chunked bodies as they arrive, so no
handler ever holds more than the limit in memory. Upload forms (a path that one of its
``uploads``' patterns matches in full) get their own, larger limit.
"""

from __future__ import annotations

import re

# Attendance reports exported by Zoom or Teams are uploaded whole, and one meeting's marks may
# name up to ``attendance.MAX_MARKS`` people: they get a larger limit.
ATTENDANCE_UPLOADS = re.compile(r"/.*/attendance(/import)?")
ATTENDANCE_MAX_BYTES = 4 * 1024 * 1024
