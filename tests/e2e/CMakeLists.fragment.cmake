# End-to-end tests on a real single-node Slurm (tools/local-slurm.sh, started by the tests when it is not
# up): the pt -> sft chain with afterok, a USR1 preemption that requeues and resumes to the same losses,
# and a failing stage whose dependents never run. One test per tests/e2e/e2e_<name>.sh, named e2e_<name>,
# label e2e, run alone (one shared cluster, and the jobs take both cores). They skip (exit 77) when not
# root or when the Slurm packages are missing. `ctest -L e2e` runs them; `ctest -LE e2e` leaves them out.
# A stand-in binary: MEDGPT_BIN=$PWD/tests/e2e/mock-medgpt.sh ctest -L e2e (MEDGPT_BIN wins over MEDGPT).
#
# Included from tests/CMakeLists.txt: include(${CMAKE_CURRENT_SOURCE_DIR}/e2e/CMakeLists.fragment.cmake)
file(GLOB MEDGPT_E2E_SCRIPTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/e2e_*.sh)
foreach(script ${MEDGPT_E2E_SCRIPTS})
  get_filename_component(name ${script} NAME_WE)   # e2e_chain.sh -> e2e_chain
  add_test(NAME ${name} COMMAND bash ${script})
  set_tests_properties(${name} PROPERTIES
    LABELS e2e
    RUN_SERIAL TRUE
    SKIP_RETURN_CODE 77
    TIMEOUT 420   # each test stops itself at MEDGPT_E2E_TIMEOUT (300 s) and cancels its jobs
    ENVIRONMENT "MEDGPT=$<TARGET_FILE:medgpt>;MEDGPT_SOURCE_DIR=${CMAKE_SOURCE_DIR};OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
endforeach()
