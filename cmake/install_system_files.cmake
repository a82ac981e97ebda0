# Install-time part of deploy/CMakeLists.txt: the systemd unit and /etc/roamhub/roamhub.json
# take their paths from the prefix given at *install* time (`cmake --install --prefix P`,
# DESTDIR, or CPack's /usr), so an install into a temporary prefix names its own binaries.
# Inputs (set by the install(CODE) that includes this): RH_UNIT_IN, RH_CONFIG_SRC, RH_SBINDIR,
# RH_DOCDIR, RH_SYSTEMD_DIR (relative to the prefix), RH_GEN_DIR (in the build tree: an install
# script's CMAKE_CURRENT_BINARY_DIR is the caller's working directory, not the build).
set(prefix "${CMAKE_INSTALL_PREFIX}")
# GNU convention (GNUInstallDirs): the /usr prefix keeps its configuration in /etc.
if(prefix STREQUAL "/usr")
  set(etc "/etc")
else()
  set(etc "${prefix}/etc")
endif()
set(ROAMHUB_SBINDIR "${prefix}/${RH_SBINDIR}")
set(ROAMHUB_DOCDIR "${prefix}/${RH_DOCDIR}")
set(ROAMHUB_SYSCONFDIR "${etc}")
set(unit "${RH_GEN_DIR}/roamhubd.service")
configure_file("${RH_UNIT_IN}" "${unit}" @ONLY)
# (file(INSTALL) adds $DESTDIR to an absolute destination itself)
file(INSTALL "${unit}" DESTINATION "${prefix}/${RH_SYSTEMD_DIR}")
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${prefix}/${RH_SYSTEMD_DIR}/roamhubd.service")
# the configuration: never overwrite an operator's edited file on a re-install
set(conf "$ENV{DESTDIR}${etc}/roamhub/roamhub.json")
if(EXISTS "${conf}")
  message(STATUS "Keeping: ${conf}")
else()
  configure_file("${RH_CONFIG_SRC}" "${RH_GEN_DIR}/roamhub.json" COPYONLY)
  file(INSTALL "${RH_GEN_DIR}/roamhub.json" DESTINATION "${etc}/roamhub"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${etc}/roamhub/roamhub.json")
