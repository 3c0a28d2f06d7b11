#!/usr/bin/env bash
# Compile check for the fused CUDA ops in torch_utils/ops/ (bias_act, upfirdn2d).
#
# Each .cu is compiled to an object for sm_80 and sm_90 with nvcc, and each
# .cpp binding is syntax-checked with the host compiler, against the torch and
# Python headers of $PYTHON and with the flags torch.utils.cpp_extension uses.
# Nothing is linked or run, so no GPU is needed. Objects go to a temporary
# directory that is removed on exit.
#
# Environment: PYTHON (default python3), NVCC (default: nvcc on PATH, else
# $CUDA_HOME/bin/nvcc), CXX (default g++), CXX_STD (default c++17).
# Exit status: 0 if everything compiled or nvcc is absent (skipped), 1 otherwise.

set -u -o pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ops_dir="$repo_dir/torch_utils/ops"
PYTHON="${PYTHON:-python3}"
CXX="${CXX:-g++}"
CXX_STD="${CXX_STD:-c++17}"

NVCC="${NVCC:-$(command -v nvcc || true)}"
if [[ -z "$NVCC" && -n "${CUDA_HOME:-}" && -x "$CUDA_HOME/bin/nvcc" ]]; then
    NVCC="$CUDA_HOME/bin/nvcc"
fi
if [[ -z "$NVCC" ]]; then
    echo "compile_cuda.sh: SKIPPED: nvcc not found (not on PATH, NVCC and CUDA_HOME unset); CUDA sources were not compiled."
    exit 0
fi

# Torch and Python header locations, and torch's C++ ABI setting.
if ! torch_info="$("$PYTHON" - <<'EOF'
import sysconfig, torch, torch.utils.cpp_extension as ext
print(sysconfig.get_path('include', scheme='posix_prefix'))
print(int(getattr(torch._C, '_GLIBCXX_USE_CXX11_ABI', True)))
print(torch.__version__)
for path in ext.include_paths():
    print(path)
EOF
)"; then
    echo "compile_cuda.sh: FAILED: could not query torch include paths with PYTHON=$PYTHON"
    exit 1
fi
mapfile -t info_lines <<< "$torch_info"
python_include="${info_lines[0]}"
cxx11_abi="${info_lines[1]}"
torch_version="${info_lines[2]}"
torch_includes=("${info_lines[@]:3}")

# CUDA headers for the host compiler: $CUDA_HOME, else ask nvcc where it lives
# (nvcc may be a wrapper script, so its own path says nothing).
cuda_home="${CUDA_HOME:-}"
if [[ -z "$cuda_home" ]]; then
    cuda_home="$("$NVCC" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n 1)"
fi
cuda_include="$cuda_home/include"
if [[ ! -f "$cuda_include/cuda_runtime_api.h" ]]; then
    echo "compile_cuda.sh: FAILED: cuda_runtime_api.h not found in '$cuda_include' (set CUDA_HOME)"
    exit 1
fi

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/compile_cuda.XXXXXX")"
trap 'rm -rf "$work_dir"' EXIT

# CPU-only torch wheels ship the c10/cuda headers but not this generated one;
# it only holds the shared-library switch that CUDA wheels set. -idirafter lets
# a real copy win wherever one exists.
shim_dir="$work_dir/shim"
mkdir -p "$shim_dir/c10/cuda/impl"
echo '#define C10_CUDA_BUILD_SHARED_LIBS' > "$shim_dir/c10/cuda/impl/cuda_cmake_macros.h"

include_flags=()
for path in "${torch_includes[@]}" "$python_include"; do
    include_flags+=(-isystem "$path")
done
common_defines=(-DTORCH_API_INCLUDE_EXTENSION_H "-D_GLIBCXX_USE_CXX11_ABI=$cxx11_abi")
# Same device flags as torch.utils.cpp_extension plus the ops' own --use_fast_math.
nvcc_flags=(
    -std="$CXX_STD" -O3 --use_fast_math --expt-relaxed-constexpr
    -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__
    -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__
    -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
    --compiler-options -fPIC -Xcompiler -Wall
)

echo "compile_cuda.sh: $("$NVCC" --version | tail -n 1); torch $torch_version; $CXX $("$CXX" -dumpversion); -std=$CXX_STD"

# Run every compile in the background, then collect results in a fixed order.
names=()
pids=()
start_job() { # name, command...
    local name="$1"; shift
    ( "$@" ) > "$work_dir/$name.log" 2>&1 &
    names+=("$name")
    pids+=($!)
}

for cu in bias_act upfirdn2d; do
    start_job "$cu.cu" "$NVCC" "${nvcc_flags[@]}" "${include_flags[@]}" "${common_defines[@]}" \
        "-DTORCH_EXTENSION_NAME=sgsom_${cu}_plugin" -I"$ops_dir" \
        -c "$ops_dir/$cu.cu" -o "$work_dir/$cu.cuda.o"
done
for cpp in bias_act upfirdn2d; do
    start_job "$cpp.cpp" "$CXX" -std="$CXX_STD" -fsyntax-only -fPIC -Wall -Wextra \
        "${include_flags[@]}" -isystem "$cuda_include" -idirafter "$shim_dir" "${common_defines[@]}" \
        "-DTORCH_EXTENSION_NAME=sgsom_${cpp}_plugin" -I"$ops_dir" \
        "$ops_dir/$cpp.cpp"
done

failed=()
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
        status="ok"
    else
        status="FAILED"
        failed+=("${names[$i]}")
    fi
    echo "  $status: torch_utils/ops/${names[$i]}"
    # Show compiler output (warnings included) so CI logs have it.
    sed 's/^/      /' "$work_dir/${names[$i]}.log"
done

if (( ${#failed[@]} )); then
    echo "compile_cuda.sh: FAILED: ${failed[*]}"
    exit 1
fi
echo "compile_cuda.sh: all CUDA sources compiled (sm_80, sm_90) in ${SECONDS}s"
