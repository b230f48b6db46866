"""Sphinx configuration of Tracelet's documentation.

Build it warning-free, as the tests do::

    sphinx-build -W -b html docs docs/_build/html
    sphinx-build -W -b doctest docs docs/_build/doctest      # runs the API docstrings' examples

The pages' own code blocks are run by ``tests/docs/test_docs.py`` (see ``docs/_ext/codeblocks.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]

import tracelet_core  # noqa: E402

project = "Tracelet"
author = "Tracelet developers"
copyright = "Tracelet developers"
release = version = tracelet_core.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "myst_parser",
    "tracelet_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "_scripts", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# -- MyST ------------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc / napoleon ----------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_default_options = {"members": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# -- doctest: the ``>>>`` examples of the API reference ---------------------------------------------
# Each example runs in a scratch directory with every tracker in a local or offline mode. Docstring
# examples use the names of the module they are written in, as ``pytest --doctest-modules`` gives them;
# here those are the public API's names.
doctest_global_setup = """
import os, tempfile
from pathlib import Path
os.environ.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", WANDB_MODE="offline", WANDB_SILENT="true")
os.chdir(tempfile.mkdtemp(prefix="tracelet-doctest-"))
from tracelet_core import *
from tracelet_core.collectors import CollectorContext, RecordingSink, unregister_collector
from tracelet_lightning import *
"""
doctest_test_doctest_blocks = "default"

# -- HTML ------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"Tracelet {release}"
html_static_path: list[str] = []
html_theme_options = {"source_repository": "", "navigation_with_keys": True}
pygments_style = "friendly"
pygments_dark_style = "monokai"
