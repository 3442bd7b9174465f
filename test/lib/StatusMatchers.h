//===- StatusMatchers.h - gtest checks of runtime Status values -*- C++ -*-===//
#ifndef V4_TEST_LIB_STATUSMATCHERS_H
#define V4_TEST_LIB_STATUSMATCHERS_H

#include "runtime/base/Status.h"

#include <gtest/gtest.h>

#include <string>

/// Expects `status` (a v4::Status) to fail with rule `id`, its message
/// ending in the "[id]" tag.
#define EXPECT_RULE(status, id)                                                \
  do {                                                                         \
    const ::v4::Status st_ = (status);                                         \
    EXPECT_FALSE(st_.ok()) << "expected failure with " << (id);                \
    EXPECT_EQ(st_.rule(), (id)) << st_.message();                              \
    EXPECT_NE(st_.message().find(std::string("[") + (id) + "]"),               \
              std::string::npos)                                               \
        << st_.message();                                                      \
  } while (0)

#endif // V4_TEST_LIB_STATUSMATCHERS_H
