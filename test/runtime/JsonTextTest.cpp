//===- JsonTextTest.cpp - the pre-parse scan of JSON text -----------------===//
//
// runtime/base/JsonText.h bounds config.json (CF-1), tokenizer.json (TK-1)
// and safetensors headers and indexes (ST-4, ST-14) before they are parsed.
//
//===----------------------------------------------------------------------===//
#include "runtime/base/JsonText.h"

#include <gtest/gtest.h>

#include <string>

using v4::JsonTextLimits;
using v4::JsonTextScan;
using v4::scanJsonText;

TEST(JsonText, StringsHideBracketsAndEscapedQuotes) {
  std::string text = R"({"a[{":"}]\"{[","b":[{"c":1},{"d":"\\"}],"e":{}})";
  JsonTextLimits limits;
  limits.maxDepth = 3;
  JsonTextScan scan = scanJsonText(text, limits);
  EXPECT_FALSE(scan.exceeded());
  ASSERT_EQ(scan.rootKeyOffsets.size(), 3u);
  EXPECT_EQ(text.substr(scan.rootKeyOffsets[0], 5), R"("a[{")");
  EXPECT_EQ(text.substr(scan.rootKeyOffsets[1], 3), R"("b")");
  EXPECT_EQ(text.substr(scan.rootKeyOffsets[2], 3), R"("e")");
  EXPECT_EQ(scan.keys, 5u); // a[{, b, c, d, e
  EXPECT_EQ(v4::skipJsonString(text, 1), 6u);
  EXPECT_EQ(v4::skipJsonString("\"abc", 0), 4u); // unterminated
}

TEST(JsonText, EachLimitNamesTheFirstOffsetBeyondIt) {
  JsonTextLimits depth;
  depth.maxDepth = 2;
  EXPECT_EQ(scanJsonText("[[1]]", depth).tooDeepAt, JsonTextScan::npos);
  EXPECT_EQ(scanJsonText(R"([["[[["],{"a":[3]}])", depth).tooDeepAt, 14u);

  JsonTextLimits values;
  values.maxValues = 3; // "[1,2" is 3 values by openers and separators
  EXPECT_EQ(scanJsonText("[1,2]", values).tooManyValuesAt, JsonTextScan::npos);
  EXPECT_EQ(scanJsonText("[1,2,3]", values).tooManyValuesAt, 4u);
  EXPECT_EQ(scanJsonText(R"(["a,b,c,d"])", values).tooManyValuesAt,
            JsonTextScan::npos);

  JsonTextLimits strings;
  strings.maxStringBytes = 5; // with its quotes
  EXPECT_EQ(scanJsonText(R"(["abc"])", strings).longStringAt,
            JsonTextScan::npos);
  JsonTextScan scan = scanJsonText(R"(["abc","abcd"])", strings);
  EXPECT_EQ(scan.longStringAt, 7u);
  EXPECT_TRUE(scan.exceeded());
}

TEST(JsonText, UnbalancedOrInvalidTextIsScannedNotJudged) {
  JsonTextScan scan = scanJsonText("]]}{\"a\":");
  EXPECT_FALSE(scan.exceeded());
  EXPECT_EQ(scan.rootKeyOffsets.size(), 1u);
  EXPECT_FALSE(scanJsonText(std::string(100000, '[')).exceeded());
  JsonTextLimits depth;
  depth.maxDepth = 64;
  EXPECT_EQ(scanJsonText(std::string(100000, '['), depth).tooDeepAt, 64u);
}
