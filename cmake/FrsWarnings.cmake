# Project-wide warning and sanitizer flags, applied to our own targets only through
# frs_set_warnings() so that third-party headers (dlib, OpenCV) stay system includes.
function(frs_set_warnings target)
  # -Wno-restrict: GCC 12 at -O3 reports std::string concatenation as overlapping memcpy
  # (GCC bug 105329), a false positive in libstdc++'s own code.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wnon-virtual-dtor
                                           -Wno-deprecated-enum-enum-conversion)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wshadow=local -Wno-restrict)
  endif()
  if(FRS_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(FRS_SANITIZE)
  add_compile_options(-fsanitize=${FRS_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${FRS_SANITIZE})
endif()

# Code that only tests (the test programs, their support library, the fuzz harness, the test
# camera): at -O1 in optimised builds, which takes a third less CPU to compile than -O3 (29 s
# against 46 s for one batch of the model tests, measured) and costs the tests nothing: the
# libraries they test keep the build's optimisation, and no test asserts a time.
function(frs_test_code target)
  target_compile_options(${target} PRIVATE $<$<NOT:$<CONFIG:Debug>>:-O1>)
endfunction()
