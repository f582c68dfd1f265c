# `cmake --install`: headers, the library, a CMake package (find_package(ambisql) gives
# ambisql::ambisql with its dependencies) and ambisql.pc for pkg-config.
include(CMakePackageConfigHelpers)

set(AMBISQL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ambisql)

install(TARGETS ambisql EXPORT ambisqlTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/ambisql DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ambisqlTargets NAMESPACE ambisql:: DESTINATION ${AMBISQL_CMAKE_DIR})

# What was built decides (BUILD_SHARED_LIBS may be unset: the default, static).
get_target_property(_ambisql_type ambisql TYPE)
if(_ambisql_type STREQUAL "SHARED_LIBRARY")
  set(AMBISQL_STATIC FALSE)
else()
  set(AMBISQL_STATIC TRUE)
endif()
configure_package_config_file(cmake/ambisqlConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/ambisqlConfig.cmake
                              INSTALL_DESTINATION ${AMBISQL_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ambisqlConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ambisqlConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/ambisqlConfigVersion.cmake
        DESTINATION ${AMBISQL_CMAKE_DIR})

# pkg-config: a static library needs its dependencies on every link line; a shared one
# carries them itself (they stay in the .private fields for --static).
set(AMBISQL_PC_DEPS "openssl zlib libsodium")
set(AMBISQL_PC_DEP_LIBS "-lboost_context -pthread")
if(NOT AMBISQL_STATIC)
  set(AMBISQL_PC_REQUIRES "")
  set(AMBISQL_PC_LIBS "")
  set(AMBISQL_PC_REQUIRES_PRIVATE "${AMBISQL_PC_DEPS}")
  set(AMBISQL_PC_LIBS_PRIVATE "${AMBISQL_PC_DEP_LIBS}")
else()
  set(AMBISQL_PC_REQUIRES "${AMBISQL_PC_DEPS}")
  set(AMBISQL_PC_LIBS "${AMBISQL_PC_DEP_LIBS}")
  set(AMBISQL_PC_REQUIRES_PRIVATE "")
  set(AMBISQL_PC_LIBS_PRIVATE "")
endif()
# From <libdir>/pkgconfig back up to the prefix.
file(RELATIVE_PATH AMBISQL_PC_UP "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(cmake/ambisql.pc.in ${CMAKE_CURRENT_BINARY_DIR}/ambisql.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ambisql.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
