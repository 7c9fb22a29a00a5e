# SPDX-License-Identifier: MIT
"""Hatchling build hook: the wheel installs chatbotkit_session.py as a typed package.

PEP 561 marks only packages as typed, so the wheel holds ``chatbotkit_session/__init__.py`` (the one
source file, mapped in pyproject.toml), an empty ``py.typed``, and a ``__main__.py`` so that
``python -m chatbotkit_session`` still runs the command line. The repository keeps the single file.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Dict

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MAIN = "import sys\n\nfrom chatbotkit_session import main\n\nsys.exit(main())\n"


class TypedPackageHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: Dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        folder = tempfile.mkdtemp(prefix="chatbotkit-session-build-")
        for name, text in (("py.typed", ""), ("__main__.py", MAIN)):
            path = os.path.join(folder, name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            build_data["force_include"][path] = "chatbotkit_session/" + name
