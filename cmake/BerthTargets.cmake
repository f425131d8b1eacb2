# berth_test(NAME SOURCES...): a GoogleTest binary registered with CTest.
function(berth_test name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE berth_core GTest::gtest GTest::gtest_main GTest::gmock)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 300)
endfunction()
