# gen_attention.cmake — turns cuda/attention.cu into a host C++ translation unit for
# test_attention_host, at build time, so the test always runs the kernel source as it is
# now (no copy to drift). Run in script mode:
#   cmake -DSRC=<cuda/attention.cu> -DOUT=<file.cpp> -P gen_attention.cmake
# The only edit is the launch: `attention_kernel<T, DH><<<grid, ATT_THREADS, 0, stream>>>(`
# becomes `rr_host_launch(attention_kernel<T, DH>, grid, ATT_THREADS, 0, stream, ` (same
# line, so the #line directive keeps every diagnostic and sanitizer report on the real
# line of cuda/attention.cu). The build fails, saying why, if that launch is not there
# exactly once or another <<< >>> launch appears: the test would otherwise silently run
# something else than the kernel.
cmake_minimum_required(VERSION 3.25)
if(NOT SRC OR NOT OUT)
  message(FATAL_ERROR "gen_attention.cmake: pass -DSRC=<attention.cu> -DOUT=<output.cpp>")
endif()

file(READ "${SRC}" text)
set(launch "attention_kernel<T, DH><<<grid, ATT_THREADS, 0, stream>>>(")
set(host_launch "rr_host_launch(attention_kernel<T, DH>, grid, ATT_THREADS, 0, stream, ")

string(LENGTH "${text}" len_before)
string(REPLACE "${launch}" "" without "${text}")
string(LENGTH "${without}" len_after)
string(LENGTH "${launch}" len_launch)
math(EXPR count "(${len_before} - ${len_after}) / ${len_launch}")
if(NOT count EQUAL 1)
  message(FATAL_ERROR
    "gen_attention.cmake: expected the launch\n  ${launch}\nexactly once in ${SRC}, "
    "found it ${count} times. If the launch changed, update the pattern here and, if the "
    "launch arguments changed, rr_host_launch in tests/cuda/host/cuda_host.h.")
endif()

string(REPLACE "${launch}" "${host_launch}" host "${text}")
string(FIND "${host}" "<<<" other)
if(NOT other EQUAL -1)
  message(FATAL_ERROR
    "gen_attention.cmake: ${SRC} has a kernel launch (<<<) besides attention_kernel's; "
    "teach gen_attention.cmake to rewrite it for the host.")
endif()

file(WRITE "${OUT}.tmp"
  "/* Generated from ${SRC} by tests/cuda/host/gen_attention.cmake; do not edit. */\n"
  "#include \"cuda_host.h\"\n"
  "#line 1 \"${SRC}\"\n"
  "${host}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
