# A three-test ctest suite for suites.test: two pass, one fails.
cmake_minimum_required(VERSION 3.20)
project(suites NONE)
enable_testing()
add_test(NAME passes COMMAND true)
add_test(NAME fails COMMAND false)
add_test(NAME passes-too COMMAND true)
