# Project-wide warning and sanitizer flags, applied to our own targets only through
# frs_set_warnings() so that third-party headers (dlib, OpenCV) stay system includes.
function(frs_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local
                                           -Wnon-virtual-dtor -Wno-deprecated-enum-enum-conversion)
  if(FRS_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(FRS_SANITIZE)
  add_compile_options(-fsanitize=${FRS_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${FRS_SANITIZE})
endif()
