# gemmac_add_plugin(<name> SOURCES <file>...)
#
# Builds lib<name>.so, a gemmac backend plugin, the way the runtime expects
# one (docs/plugin-guide.md): a MODULE library (dlopen'ed, never linked
# against) that links gemmac::plugin_abi, compiled with hidden visibility,
# and on Linux linked with a version script that exports gemmac_plugin_entry
# and nothing else, and with -z defs so that a missing library fails the link
# instead of the dlopen. Name it gemmac_<something>: the runtime's directory
# search (GEMMAC_PLUGIN_PATH, the install dir) loads only libgemmac_*.so.
# Shipped in the gemmac CMake package next to gemmacConfig.cmake.
include_guard(GLOBAL)

function(gemmac_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "SOURCES")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "gemmac_add_plugin(${name}): unexpected arguments "
                        "'${ARG_UNPARSED_ARGUMENTS}'; expected SOURCES <file>...")
  endif()
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "gemmac_add_plugin(${name}): SOURCES is empty; "
                        "expected at least one source file")
  endif()
  if(NOT TARGET gemmac::plugin_abi)
    message(FATAL_ERROR "gemmac_add_plugin(${name}): target gemmac::plugin_abi "
                        "is missing; expected find_package(gemmac) first")
  endif()
  # CMAKE_CURRENT_FUNCTION_LIST_DIR: this file's folder, wherever the
  # function is called from (the version script is shipped beside it).
  set(map "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/gemmac_plugin_exports.map")

  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE gemmac::plugin_abi)
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME ${name}
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    # Hidden visibility hides the plugin's own code; the version script also
    # keeps symbols pulled in from static libraries and template
    # instantiations out of the dynamic symbol table.
    target_link_options(${name} PRIVATE
      "LINKER:--version-script=${map}" "LINKER:-z,defs")
    set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${map}")
  endif()
endfunction()
