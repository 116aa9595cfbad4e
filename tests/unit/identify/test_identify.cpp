// identify() end to end against tiny servers on 127.0.0.1 (loopback_server.hpp):
// the real client path runs (connect, TLS, one request, bounded read). The
// MongoDB, Elasticsearch and kube-apiserver servers here replay recorded
// answers from tests/data/identify/ (hand-built from the wire formats:
// Debian has no such servers; etcd, which Debian has, is tested for real in
// test_identify_etcd.cpp). Garbage, truncated, oversized and silent servers
// must give "unknown" in bounded time, without a crash.
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <memory>

#include <gtest/gtest.h>

#include "identify/bson.hpp"
#include "identify/identify.hpp"
#include "loopback_server.hpp"

namespace portmatrix {
namespace {

using namespace std::chrono_literals;
using test::identify_data;
using test::LoopbackServer;
using test::read_until;
using test::write_all;

constexpr auto k_timeout = 500ms;
constexpr const char* k_loopback = "127.0.0.1";

bool
http_request_done(const std::string& bytes)
{
  return bytes.find("\r\n\r\n") != std::string::npos;
}

// Serves one recorded HTTP answer per connection and remembers the requests.
struct HttpReplay
{
  explicit HttpReplay(std::string answer)
    : server([this, answer = std::move(answer)](int fd, const std::atomic<bool>&) {
        auto request = read_until(fd, http_request_done);
        {
          std::lock_guard lock(mutex);
          requests.push_back(request);
        }
        write_all(fd, answer);
      })
  {
  }
  std::mutex mutex;
  std::vector<std::string> requests;
  LoopbackServer server;
};

// A MongoDB server that answers hello and buildInfo with the recorded
// replies, as mongod does: responseTo set to the request's id.
struct MongoReplay
{
  MongoReplay()
    : server([this](int fd, const std::atomic<bool>&) {
        for (;;) {
          auto request = read_until(fd, [](const std::string& bytes) {
            auto length = bson::message_length(bytes);
            return length && bytes.size() >= *length;
          });
          if (request.size() < 21) return;
          auto body = request.substr(21);
          std::string reply;
          if (body.find(std::string("\x10hello\0\x01\0\0\0", 11)) == 4) reply = identify_data("mongodb-hello-reply.bin");
          else if (body.find(std::string("\x10" "buildInfo\0\x01\0\0\0", 15)) == 4) reply = identify_data("mongodb-buildinfo-reply.bin");
          else return;
          ++commands;
          reply.replace(8, 4, request.substr(4, 4)); // responseTo = the request's requestID
          write_all(fd, reply);
        }
      })
  {
  }
  std::atomic<int> commands{0};
  LoopbackServer server;
};

TEST(Identify, MongodbHelloThenBuildInfo)
{
  MongoReplay mongo;
  auto id = identify(k_loopback, mongo.server.port(), Protocol::tcp, "mongodb", k_timeout);
  EXPECT_EQ(id.summary, "MongoDB 7.0.12, replica set rs0, primary");
  EXPECT_EQ(id.service, "MongoDB");
  EXPECT_EQ(mongo.server.connections(), 1);
  EXPECT_EQ(mongo.commands, 2);
}

TEST(Identify, ElasticsearchOneGet)
{
  HttpReplay es(identify_data("elasticsearch-root.http"));
  auto id = identify(k_loopback, es.server.port(), Protocol::tcp, "elasticsearch-http", k_timeout);
  EXPECT_EQ(id.summary, "Elasticsearch 8.15.0, cluster apinizer");
  ASSERT_EQ(es.requests.size(), 1u);
  EXPECT_TRUE(es.requests[0].starts_with("GET / HTTP/1.1\r\n")) << es.requests[0];
}

TEST(Identify, ElasticsearchTransportAndGenericHttp)
{
  HttpReplay transport(identify_data("elasticsearch-transport.http"));
  EXPECT_EQ(identify(k_loopback, transport.server.port(), Protocol::tcp, "elasticsearch-transport", k_timeout).summary,
            "Elasticsearch transport (refuses HTTP)");
  HttpReplay web("HTTP/1.1 302 Found\r\nServer: Apinizer\r\nLocation: /login\r\nContent-Length: 0\r\n\r\n");
  auto id = identify(k_loopback, web.server.port(), Protocol::tcp, "apinizer-manager", k_timeout);
  EXPECT_EQ(id.summary, "HTTP server: Apinizer (302 Found)");
  EXPECT_EQ(web.requests.size(), 1u); // an answer: no other protocol is tried
}

// --- TLS --------------------------------------------------------------------

struct TlsContext
{
  // A key and a certificate made in memory: subject CN `subject`, issuer CN
  // `issuer` (self-signed: the client does not verify), SAN `san`.
  TlsContext(const char* subject, const char* issuer, const char* san)
  {
    context = SSL_CTX_new(TLS_server_method());
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* certificate = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
    X509_gmtime_adj(X509_getm_notBefore(certificate), -3600);
    X509_gmtime_adj(X509_getm_notAfter(certificate), 3600);
    X509_set_pubkey(certificate, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(certificate), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(subject), -1, -1, 0);
    X509_NAME_add_entry_by_txt(X509_get_issuer_name(certificate), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(issuer), -1, -1, 0);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, certificate, certificate, nullptr, nullptr, 0);
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san);
    X509_add_ext(certificate, extension, -1);
    X509_EXTENSION_free(extension);
    X509_sign(certificate, key, EVP_sha256());
    SSL_CTX_use_certificate(context, certificate);
    SSL_CTX_use_PrivateKey(context, key);
    X509_free(certificate);
    EVP_PKEY_free(key);
  }
  ~TlsContext() { SSL_CTX_free(context); }
  SSL_CTX* context;
};

// Accepts TLS, reads one request, answers `answer` (empty: closes).
LoopbackServer::Handler
tls_replay(SSL_CTX* context, std::string answer, std::vector<std::string>* requests)
{
  return [=](int fd, const std::atomic<bool>&) {
    sigset_t pipe; // SSL_write to a client that left must not kill the test
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(context), SSL_free);
    SSL_set_fd(ssl.get(), fd);
    if (SSL_accept(ssl.get()) != 1) return;
    std::string request;
    char buffer[2048];
    while (request.find("\r\n\r\n") == std::string::npos) {
      int n = SSL_read(ssl.get(), buffer, sizeof(buffer));
      if (n <= 0) return;
      request.append(buffer, std::size_t(n));
    }
    if (requests) requests->push_back(request);
    SSL_write(ssl.get(), answer.data(), int(answer.size()));
    SSL_shutdown(ssl.get());
  };
}

TEST(Identify, KubeApiserverVersionOverTls)
{
  TlsContext tls("kube-apiserver", "kubernetes", "DNS:kubernetes.default,IP:127.0.0.1");
  std::vector<std::string> requests;
  LoopbackServer server(tls_replay(tls.context, identify_data("kube-apiserver-version.http"), &requests));
  auto id = identify(k_loopback, server.port(), Protocol::tcp, "kube-apiserver", k_timeout);
  EXPECT_EQ(id.service, "kube-apiserver");
  EXPECT_EQ(id.version, "v1.31.0");
  EXPECT_EQ(id.summary, "kube-apiserver v1.31.0 (TLS, cert CN=kube-apiserver, issuer CN=kubernetes)");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(requests[0].starts_with("GET /version HTTP/1.1\r\n"));
}

TEST(Identify, TlsServerThatWantsAClientCertificateIsNamedByItsOwn)
{
  TlsContext tls("master1", "etcd-ca", "DNS:localhost,IP:127.0.0.1");
  SSL_CTX_set_verify(tls.context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  LoopbackServer server(tls_replay(tls.context, "", nullptr));
  auto id = identify(k_loopback, server.port(), Protocol::tcp, "etcd", k_timeout);
  EXPECT_EQ(id.service, "etcd");
  EXPECT_EQ(id.summary, "etcd (TLS, client certificate required, cert CN=master1, issuer CN=etcd-ca)");
}

TEST(Identify, KubeletShowsOnlyItsCertificate)
{
  TlsContext tls("node1@1723370000", "node1-ca@1723370000", "DNS:node1");
  std::vector<std::string> requests;
  LoopbackServer server(tls_replay(tls.context, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", &requests));
  auto id = identify(k_loopback, server.port(), Protocol::tcp, "kubelet", k_timeout);
  EXPECT_EQ(id.summary, "kubelet (TLS, cert CN=node1@1723370000, issuer CN=node1-ca@1723370000)");
  EXPECT_TRUE(requests.empty()); // the handshake only, no request
}

// --- servers that do not answer well ---------------------------------------------

template <class F>
std::chrono::milliseconds
timed(F&& f)
{
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

TEST(Identify, SilentServerCostsOneTimeout)
{
  LoopbackServer server([](int, const std::atomic<bool>& stopping) { test::stay_silent(stopping); });
  Identification id;
  auto took = timed([&] { id = identify(k_loopback, server.port(), Protocol::tcp, "", k_timeout); });
  EXPECT_FALSE(id.known());
  EXPECT_EQ(id.summary, "unknown: HTTP: no answer in 500 ms");
  EXPECT_GE(took, k_timeout - 10ms);
  EXPECT_EQ(server.connections(), 1) << "another protocol was tried after the silence: more timeouts";
}

TEST(Identify, GarbageIsUnknownAfterEveryProtocol)
{
  LoopbackServer server([](int fd, const std::atomic<bool>&) {
    std::string garbage;
    for (int i = 0; i < 300; ++i) garbage.push_back(char((i * 37 + 11) & 0xff));
    write_all(fd, garbage);
    ::shutdown(fd, SHUT_WR);
    read_until(fd, [](const std::string&) { return false; }, 4096); // until the client closes
  });
  Identification id;
  auto took = timed([&] { id = identify(k_loopback, server.port(), Protocol::tcp, "", k_timeout); });
  EXPECT_FALSE(id.known()) << id.summary;
  EXPECT_TRUE(id.summary.starts_with("unknown: HTTP: answered 300 bytes that are not HTTP")) << id.summary;
  EXPECT_NE(id.summary.find("HTTPS: TLS failed"), std::string::npos) << id.summary;
  EXPECT_NE(id.summary.find("MongoDB hello: "), std::string::npos) << id.summary;
  EXPECT_EQ(server.connections(), 3);
  // Garbage is answered at once: the three tries are not a timeout each.
  // The comparison, measured here: one try against a silent server, one timeout.
  LoopbackServer silent([](int, const std::atomic<bool>& stopping) { test::stay_silent(stopping); });
  auto one_timeout = timed([&] { identify(k_loopback, silent.port(), Protocol::tcp, "", k_timeout); });
  EXPECT_LT(took, 2 * one_timeout) << "waited out timeouts on an answer";
}

TEST(Identify, TruncatedMongodbReplyIsUnknown)
{
  for (bool hold : {false, true}) {
    LoopbackServer server([hold](int fd, const std::atomic<bool>& stopping) {
      read_until(fd, [](const std::string& bytes) { return bytes.size() >= 16; });
      auto reply = identify_data("mongodb-hello-reply.bin");
      write_all(fd, reply.substr(0, reply.size() / 2));
      if (hold) test::stay_silent(stopping);
    });
    Identification id;
    auto took = timed([&] { id = identify(k_loopback, server.port(), Protocol::tcp, "mongodb", k_timeout); });
    EXPECT_FALSE(id.known()) << id.summary;
    EXPECT_TRUE(id.summary.starts_with("unknown: MongoDB hello: ")) << id.summary;
    // Each protocol's try ends within its timeout (the held reply's too):
    // three tries, at most three timeouts, compared with one measured here.
    EXPECT_EQ(server.connections(), 3) << id.summary;
    LoopbackServer silent([](int, const std::atomic<bool>& stopping) { test::stay_silent(stopping); });
    auto one_timeout = timed([&] { identify(k_loopback, silent.port(), Protocol::tcp, "", k_timeout); });
    EXPECT_LT(took, 4 * one_timeout) << id.summary;
  }
}

TEST(Identify, OversizedAnswersAreCut)
{
  // Endless headers: the read stops at the limit.
  LoopbackServer http([](int fd, const std::atomic<bool>&) {
    read_until(fd, http_request_done);
    write_all(fd, "HTTP/1.1 200 OK\r\n");
    std::string header = "X-Filler: " + std::string(1000, 'x') + "\r\n";
    for (int i = 0; i < 2000; ++i) {
      if (::send(fd, header.data(), header.size(), MSG_NOSIGNAL) <= 0) return;
    }
  });
  auto id = identify(k_loopback, http.port(), Protocol::tcp, "apinizer-worker", k_timeout);
  EXPECT_FALSE(id.known()) << id.summary;
  EXPECT_NE(id.summary.find("answered 65536 bytes that are not HTTP"), std::string::npos) << id.summary;

  // A MongoDB reply announcing 2 GiB is not waited for (the other probes
  // that follow find the port closed).
  std::atomic<int> seen{0};
  LoopbackServer mongo([&seen](int fd, const std::atomic<bool>& stopping) {
    if (seen++ > 0) return;
    read_until(fd, [](const std::string& bytes) { return bytes.size() >= 16; });
    std::string header("\x00\x00\x00\x80", 4);
    header += std::string(12, '\0');
    write_all(fd, header);
    test::stay_silent(stopping);
  });
  // A timeout far beyond any delay of a loaded machine: refused at once, not after it.
  constexpr auto k_long = std::chrono::milliseconds(20000);
  Identification big;
  auto took = timed([&] { big = identify(k_loopback, mongo.port(), Protocol::tcp, "mongodb", k_long); });
  EXPECT_FALSE(big.known());
  EXPECT_TRUE(big.summary.starts_with("unknown: MongoDB hello: answered 16 bytes that are not a MongoDB reply"))
    << big.summary;
  EXPECT_LT(took, k_long) << "waited for the 2 GiB";
}

TEST(Identify, RefusedUdpAndBadAddress)
{
  std::uint16_t free_port = 0;
  {
    LoopbackServer closed([](int, const std::atomic<bool>&) {});
    free_port = closed.port();
  } // closed: nothing listens there now
  auto id = identify(k_loopback, free_port, Protocol::tcp, "etcd", k_timeout);
  EXPECT_EQ(id.summary, "unknown: HTTPS: connection refused");
  EXPECT_EQ(identify(k_loopback, 8472, Protocol::udp, "flannel-vxlan", k_timeout).summary,
            "unknown: UDP services are not probed");
  EXPECT_FALSE(identify("not-an-address", 1, Protocol::tcp, "", k_timeout).known());
}

} // namespace
} // namespace portmatrix
