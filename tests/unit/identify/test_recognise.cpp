// The recognisers on recorded answers (tests/data/identify/: hand-built from
// the published formats, because Debian has no MongoDB, Elasticsearch or
// Kubernetes API server to capture from), without sockets.
#include <gtest/gtest.h>

#include "identify/recognise.hpp"
#include "loopback_server.hpp"

namespace portmatrix {
namespace {

using test::identify_data;

Identification
from_file(const std::string& name, const Certificate* certificate = nullptr)
{
  auto bytes = identify_data(name);
  EXPECT_TRUE(http_response_complete(bytes)) << name;
  auto response = parse_http_response(bytes);
  EXPECT_TRUE(response) << name;
  return response ? recognise_http(*response, certificate) : Identification{};
}

TEST(Recognise, ElasticsearchRoot)
{
  auto id = from_file("elasticsearch-root.http");
  EXPECT_EQ(id.service, "Elasticsearch");
  EXPECT_EQ(id.version, "8.15.0");
  EXPECT_EQ(id.summary, "Elasticsearch 8.15.0, cluster apinizer");
}

TEST(Recognise, ElasticsearchWithSecurityOn)
{
  auto id = from_file("elasticsearch-security.http");
  EXPECT_EQ(id.service, "Elasticsearch");
  EXPECT_EQ(id.summary, "Elasticsearch (security on: 401 without credentials)");
}

TEST(Recognise, ElasticsearchTransportPort)
{
  EXPECT_EQ(from_file("elasticsearch-transport.http").summary, "Elasticsearch transport (refuses HTTP)");
}

TEST(Recognise, KubeApiserverVersionOverTls)
{
  Certificate certificate{"kube-apiserver", "kubernetes", {"kubernetes.default"}, "TLSv1.3"};
  auto id = from_file("kube-apiserver-version.http", &certificate);
  EXPECT_EQ(id.service, "kube-apiserver");
  EXPECT_EQ(id.version, "v1.31.0");
  EXPECT_EQ(id.summary, "kube-apiserver v1.31.0 (TLS, cert CN=kube-apiserver, issuer CN=kubernetes)");
}

TEST(Recognise, EtcdVersionAndGenericServers)
{
  auto etcd = parse_http_response("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 45\r\n\r\n"
                                  "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}");
  ASSERT_TRUE(etcd);
  EXPECT_EQ(recognise_http(*etcd, nullptr).summary, "etcd 3.4.23 (cluster version 3.4.0)");

  auto nginx = parse_http_response("HTTP/1.1 404 Not Found\r\nServer: nginx/1.25.3\r\nContent-Length: 3\r\n\r\nno!");
  ASSERT_TRUE(nginx);
  auto id = recognise_http(*nginx, nullptr);
  EXPECT_EQ(id.service, "HTTP");
  EXPECT_EQ(id.summary, "HTTP server: nginx/1.25.3 (404 Not Found)");

  auto chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "b\r\n{\"etcdserve\r\n16\r\nr\":\"3.5.9\",\"x\":\"y\"}   \r\n0\r\n\r\n";
  EXPECT_TRUE(http_response_complete(chunked));
  auto response = parse_http_response(chunked);
  ASSERT_TRUE(response);
  EXPECT_EQ(recognise_http(*response, nullptr).version, "3.5.9");
}

TEST(Recognise, IncompleteAndNonHttp)
{
  EXPECT_FALSE(http_response_complete("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"));
  EXPECT_FALSE(http_response_complete("HTTP/1.1 200 OK\r\n"));
  EXPECT_FALSE(parse_http_response("SSH-2.0-OpenSSH_9.2p1\r\n"));
  EXPECT_FALSE(parse_http_response("HTTP/1.1 2x0 OK\r\n\r\n"));
  EXPECT_FALSE(parse_http_response(std::string("\x16\x03\x01\x00", 4)));
}

TEST(Recognise, MongodbHelloAndBuildInfo)
{
  auto hello = bson::decode(*bson::op_msg_body(identify_data("mongodb-hello-reply.bin"), 1));
  auto build = bson::decode(*bson::op_msg_body(identify_data("mongodb-buildinfo-reply.bin"), 2));
  ASSERT_TRUE(hello && build);
  auto id = recognise_mongodb(*hello, &*build);
  EXPECT_EQ(id.service, "MongoDB");
  EXPECT_EQ(id.version, "7.0.12");
  EXPECT_EQ(id.summary, "MongoDB 7.0.12, replica set rs0, primary");
  EXPECT_EQ(recognise_mongodb(*hello, nullptr).summary, "MongoDB 7.0 (from wire version 21), replica set rs0, primary");
  // Not a command reply at all.
  EXPECT_FALSE(recognise_mongodb(*bson::decode(bson::Builder().add("x", 1).finish()), nullptr).known());
}

TEST(Recognise, Certificates)
{
  auto etcd = recognise_certificate({"master1", "etcd-ca", {"localhost", "10.0.0.11"}, "TLSv1.3"},
                                    "client certificate required");
  EXPECT_EQ(etcd.service, "etcd");
  EXPECT_EQ(etcd.summary, "etcd (TLS, client certificate required, cert CN=master1, issuer CN=etcd-ca)");
  EXPECT_EQ(recognise_certificate({"master1@1723370000", "master1-ca@1723370000", {}, ""}, "").service, "kubelet");
  EXPECT_EQ(recognise_certificate({"", "kubernetes", {"kubernetes.default"}, ""}, "").service, "kube-apiserver");
  auto other = recognise_certificate({"www.example.test", "Example CA", {}, ""}, "");
  EXPECT_EQ(other.service, "TLS");
  EXPECT_EQ(other.summary, "TLS server (cert CN=www.example.test, issuer CN=Example CA)");
}

} // namespace
} // namespace portmatrix
