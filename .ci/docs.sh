#!/usr/bin/env bash
# CI: build the documentation site strictly (every page, link and API entry resolves).
# The API reference imports the checkout's fasttape, so the extensions are built in
# place first; the site's examples themselves run in the test suite (tests/test_docs.py).
set -euo pipefail
cd "$(dirname "$0")/.."
pip install ".[docs]"
# the in-place build runs setup.py directly: the build requirements of pyproject.toml
pip install "setuptools>=77" "Cython>=3.0.8,<4"
python setup.py build_ext --inplace -j 2 > /dev/null
python -m mkdocs build --strict --site-dir "$(mktemp -d)/site"
