# herald_add_plugin(<name> SOURCES <file>... [LINK_LIBRARIES <lib>...])
#
# Builds <name>.so, a native Herald plugin: a MODULE library (loaded with dlopen, never linked
# against), named exactly <name>.so with no "lib" prefix because Herald loads every .so of a
# folder by name, with the SDK headers and nlohmann_json, C++17 at least, and hidden visibility
# so the only exported symbol is herald_plugin_entry (HERALD_PLUGIN_EXPORT). The target is
# called <name>: add sources, options or libraries to it as to any other.
#
# It links none of Herald's libraries: Herald and its plugins meet through the C ABI of
# herald/plugin.h only. Mirrors herald_builtin_plugin in Herald's plugins/CMakeLists.txt.
#
#   find_package(Herald REQUIRED)
#   herald_add_plugin(hello SOURCES hello.cc)
#
# Then: HERALD_PLUGINS_PATHS=$PWD/build herald plugins call hello.greet --input '{"name": "Ada"}'
include_guard(GLOBAL)

function(herald_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;LINK_LIBRARIES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "herald_add_plugin(${name}): unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "herald_add_plugin(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE Herald::sdk ${arg_LINK_LIBRARIES})
  # A minimum, so a plugin may still choose C++20; plugin.hpp needs 17.
  target_compile_features(${name} PRIVATE cxx_std_17)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${name}
    SUFFIX ".so"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
endfunction()
