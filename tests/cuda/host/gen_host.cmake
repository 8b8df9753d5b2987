# gen_host.cmake — turns one kernel file of cuda/ into a host C++ translation unit, at build
# time, so the host tests always run the kernel source as it is now (no copy to drift). Run
# in script mode:
#   cmake -DSRC=<cuda/x.cu> -DOUT=<file.cpp> -P gen_host.cmake
# The only edit is the launch syntax, and it is generic, so no kernel name or argument list
# is spelled here: `k<T, NV><<<grid, block, smem, stream>>>(args)` becomes
# `k<T, NV> * rr_host_config(grid, block, smem, stream)(args)`. The call binds first and
# collects the arguments; `*` then meets the kernel's function pointer (cuda_host.h), which
# converts the arguments to the kernel's parameter types once, as a launch copies them, and
# runs or enqueues the grid. Text positions and line breaks are kept and a #line directive
# names the real file, so every diagnostic and sanitizer report points into cuda/.
cmake_minimum_required(VERSION 3.25)
if(NOT SRC OR NOT OUT)
  message(FATAL_ERROR "gen_host.cmake: pass -DSRC=<kernel.cu> -DOUT=<output.cpp>")
endif()

file(READ "${SRC}" text)
string(REPLACE "<<<" "* rr_host_config(" host "${text}")
string(REPLACE ">>>" ")" host "${host}")

file(WRITE "${OUT}.tmp"
  "/* Generated from ${SRC} by tests/cuda/host/gen_host.cmake; do not edit. */\n"
  "#include \"cuda_host.h\"\n"
  "#line 1 \"${SRC}\"\n"
  "${host}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
