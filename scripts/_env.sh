# Shared by scripts/test and scripts/tokenopt (sourced, not run): puts uv on PATH and
# points tiktoken at the offline encodings next to the checkout when they exist.

# uv builds the locked environment; without one on PATH, install it into .tools/
# (a private venv, so no system Python is touched).
if ! command -v uv >/dev/null 2>&1; then
    if [ ! -x .tools/bin/uv ]; then
        python3 -m venv .tools
        .tools/bin/python -m pip install --quiet --disable-pip-version-check uv
    fi
    export PATH="$PWD/.tools/bin:$PATH"
fi
# Offline tiktoken: use the cached encodings next to the checkout when present.
if [ -z "${TIKTOKEN_CACHE_DIR:-}" ] && [ -d ../shared/tiktoken ]; then
    export TIKTOKEN_CACHE_DIR="$(cd ../shared/tiktoken && pwd)"
fi

uv sync --locked --all-extras --group dev --quiet
