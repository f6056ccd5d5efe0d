"""Where the files that ship beside the code are found: the page and email templates.

``templates/`` stays at the top of the repository (the layout promises it); ``scheduler/templates``
links to it, so setuptools packages it as package data and an installed wheel finds it through
``importlib.resources``, just as a checkout does.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# Jinja's FileSystemLoader wants a real directory: the package is installed as files, never zipped.
TEMPLATES = Path(str(files("scheduler") / "templates"))
EMAIL_TEMPLATES = TEMPLATES / "email"
