// BSON and OP_MSG: the encoder against bytes worked out by hand from
// bsonspec.org, the decoder against the recorded MongoDB 7.0 replies
// (tests/data/identify/make.py builds them from the wire-protocol spec;
// Debian has no MongoDB server to capture from), and every malformed or
// truncated input is refused without reading past the buffer.
#include <gtest/gtest.h>

#include "identify/bson.hpp"
#include "loopback_server.hpp"

namespace portmatrix {
namespace {

using test::identify_data;

std::string
bytes(std::initializer_list<int> values)
{
  std::string out;
  for (int v : values) out.push_back(char(v));
  return out;
}

TEST(Bson, EncodesTheHelloCommandAsTheSpecSays)
{
  auto encoded = bson::Builder().add("hello", 1).add("$db", "admin").finish();
  // int32 total 31 | 0x10 "hello\0" int32 1 | 0x02 "$db\0" int32 6 "admin\0" | 0
  auto expected = bytes({31, 0, 0, 0}) + "\x10" + std::string("hello", 6) + bytes({1, 0, 0, 0}) + "\x02" +
                  std::string("$db", 4) + bytes({6, 0, 0, 0}) + std::string("admin", 6) + bytes({0});
  EXPECT_EQ(encoded, expected);
  auto message = bson::op_msg(7, encoded);
  ASSERT_EQ(message.size(), 16u + 4 + 1 + 31);
  EXPECT_EQ(message.substr(0, 16), bytes({52, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0xdd, 0x07, 0, 0}));
  EXPECT_EQ(message.substr(16, 5), bytes({0, 0, 0, 0, 0})); // flagBits, section kind 0
}

TEST(Bson, DecodesWhatItEncodes)
{
  auto fields = bson::decode(bson::Builder().add("hello", 1).add("$db", "admin").finish());
  ASSERT_TRUE(fields);
  EXPECT_EQ(bson::number(*fields, "hello"), 1.0);
  EXPECT_EQ(bson::text(*fields, "$db"), "admin");
  EXPECT_FALSE(bson::text(*fields, "hello"));
  EXPECT_FALSE(bson::number(*fields, "missing"));
}

TEST(Bson, DecodesTheRecordedHelloReply)
{
  auto message = identify_data("mongodb-hello-reply.bin");
  ASSERT_GT(message.size(), 100u);
  EXPECT_EQ(bson::message_length(message), message.size());
  auto body = bson::op_msg_body(message, 1);
  ASSERT_TRUE(body);
  auto fields = bson::decode(*body);
  ASSERT_TRUE(fields);
  EXPECT_EQ(bson::text(*fields, "setName"), "rs0");
  EXPECT_EQ(bson::number(*fields, "maxWireVersion"), 21.0);
  EXPECT_EQ(bson::boolean(*fields, "isWritablePrimary"), true);
  EXPECT_EQ(bson::boolean(*fields, "secondary"), false);
  EXPECT_EQ(bson::number(*fields, "ok"), 1.0);
  EXPECT_TRUE(std::holds_alternative<bson::Raw>(fields->at("topologyVersion")));
  EXPECT_TRUE(std::holds_alternative<bson::Raw>(fields->at("hosts")));
  EXPECT_TRUE(std::holds_alternative<bson::Other>(fields->at("electionId"))); // ObjectId
  EXPECT_TRUE(std::holds_alternative<bson::Other>(fields->at("operationTime"))); // Timestamp
  // A nested document decodes on its own.
  auto nested = bson::decode(std::get<bson::Raw>(fields->at("$clusterTime")).bytes);
  ASSERT_TRUE(nested);
  EXPECT_TRUE(nested->count("signature"));

  auto build = bson::op_msg_body(identify_data("mongodb-buildinfo-reply.bin"), 2);
  ASSERT_TRUE(build);
  auto build_fields = bson::decode(*build);
  ASSERT_TRUE(build_fields);
  EXPECT_EQ(bson::text(*build_fields, "version"), "7.0.12");
}

TEST(Bson, ARepliesToAnotherRequestIsNotOurs)
{
  EXPECT_FALSE(bson::op_msg_body(identify_data("mongodb-hello-reply.bin"), 2));
}

TEST(Bson, EveryTruncationIsRefused)
{
  auto message = identify_data("mongodb-hello-reply.bin");
  for (std::size_t n = 0; n < message.size(); ++n) {
    EXPECT_FALSE(bson::op_msg_body(std::string_view(message).substr(0, n), 1)) << n;
  }
  auto body = *bson::op_msg_body(message, 1);
  for (std::size_t n = 0; n < body.size(); ++n) {
    // A prefix with its length field patched to match: the elements are cut.
    std::string cut = body.substr(0, n);
    if (cut.size() >= 4) {
      auto size = std::uint32_t(cut.size());
      for (int i = 0; i < 4; ++i) cut[std::size_t(i)] = char((size >> (8 * i)) & 0xff);
    }
    auto fields = bson::decode(cut);
    if (fields) {
      EXPECT_LT(fields->size(), 5u) << n;
    } // only a cut that ends on an element boundary decodes
  }
}

TEST(Bson, LengthsThatLieAreRefused)
{
  auto good = bson::Builder().add("s", "ab").finish(); // len | 02 's' 0 | int32 3 'a' 'b' 0 | 0
  ASSERT_TRUE(bson::decode(good));
  auto past_the_end = good;
  past_the_end[7] = char(0xff); // the string's length runs past the document
  EXPECT_FALSE(bson::decode(past_the_end));
  auto negative = good;
  negative.replace(7, 4, bytes({0xfe, 0xff, 0xff, 0xff}));
  EXPECT_FALSE(bson::decode(negative));
  // A nested document longer than its parent.
  EXPECT_FALSE(bson::decode(bytes({13, 0, 0, 0, 0x03, 'd', 0, 0x40, 0, 0, 0, 0, 0})));
  // An unknown element type.
  EXPECT_FALSE(bson::decode(bytes({8, 0, 0, 0, 0x42, 'x', 0, 0})));
  // The announced length differs from the bytes.
  EXPECT_FALSE(bson::decode(bytes({6, 0, 0, 0, 0})));
  EXPECT_TRUE(bson::decode(bytes({5, 0, 0, 0, 0})));
  // Message lengths outside 21 .. 1 MiB.
  EXPECT_FALSE(bson::message_length(bytes({20, 0, 0, 0})));
  EXPECT_FALSE(bson::message_length(bytes({0, 0, 0, 0x7f})));
  EXPECT_FALSE(bson::message_length("abc"));
}

} // namespace
} // namespace portmatrix
