// identify() against a real etcd (Debian's etcd-server, 3.4): plain HTTP on
// its client and peer ports, then TLS with a certificate from an "etcd-ca"
// (made with `openssl req`/`x509` in a temp dir), with and without client
// certificate authentication. etcd listens on 127.0.0.1 ports the kernel
// just handed out; its data dir is a temp dir; it is stopped by pid.
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "identify/identify.hpp"
#include "net/fd.hpp"
#include "util/process.hpp"
#include "../skip.hpp"

namespace portmatrix {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::uint16_t
free_port()
{
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

bool
accepts(std::uint16_t port)
{
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
}

class Etcd : public ::testing::Test
{
protected:
  void SetUp() override
  {
    if (!have_program("etcd")) PORTMATRIX_SKIP() << "etcd is not installed (Debian package etcd-server)";
    char pattern[] = "/tmp/pm-identify-etcd.XXXXXX";
    ASSERT_TRUE(::mkdtemp(pattern));
    m_dir = pattern;
  }
  void TearDown() override
  {
    if (m_pid > 0) stop_process(m_pid);
    if (!m_dir.empty()) fs::remove_all(m_dir);
  }

  // Starts etcd with its client URL scheme `scheme` and `extra` flags; waits until it listens.
  void start(const std::string& scheme, std::vector<std::string> extra = {})
  {
    m_client = free_port();
    m_peer = free_port();
    auto client = scheme + "://127.0.0.1:" + std::to_string(m_client);
    auto peer = "http://127.0.0.1:" + std::to_string(m_peer);
    std::vector<std::string> argv{"etcd", "--name", "pmtest", "--data-dir", m_dir + "/data",
                                  "--listen-client-urls", client, "--advertise-client-urls", client,
                                  "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                                  "--initial-cluster", "pmtest=" + peer};
    argv.insert(argv.end(), extra.begin(), extra.end());
    m_pid = spawn_process(argv, m_dir + "/etcd.log");
    ASSERT_GT(m_pid, 0);
    // etcd listens early and serves only once ready (until then it accepts
    // and stays silent, which identify reports as such): wait for its word.
    auto ready = [&] {
      std::ifstream log(m_dir + "/etcd.log");
      std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      return text.find("ready to serve client requests") != std::string::npos;
    };
    for (int i = 0; i < 200 && !ready(); ++i) std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(ready()) << "etcd did not become ready";
    ASSERT_TRUE(accepts(m_client)) << "etcd does not listen on " << m_client;
  }

  // A CA "etcd-ca" and a server certificate CN=pmtest for 127.0.0.1, signed by it.
  void make_certificates()
  {
    auto run = [&](std::vector<std::string> argv) {
      auto result = run_process(argv);
      ASSERT_EQ(result.status, 0) << result.output;
    };
    std::ofstream(m_dir + "/san.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", "/CN=etcd-ca", "-keyout", m_dir + "/ca.key", "-out", m_dir + "/ca.crt"});
    run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
         "/CN=pmtest", "-keyout", m_dir + "/server.key", "-out", m_dir + "/server.csr"});
    run({"openssl", "x509", "-req", "-in", m_dir + "/server.csr", "-CA", m_dir + "/ca.crt", "-CAkey",
         m_dir + "/ca.key", "-CAcreateserial", "-days", "1", "-extfile", m_dir + "/san.ext", "-out",
         m_dir + "/server.crt"});
  }

  std::string m_dir;
  pid_t m_pid = -1;
  std::uint16_t m_client = 0;
  std::uint16_t m_peer = 0;
};

TEST_F(Etcd, PlainClientAndPeerPorts)
{
  start("http");
  auto id = identify("127.0.0.1", m_client, Protocol::tcp, "etcd", 1000ms);
  EXPECT_EQ(id.service, "etcd");
  EXPECT_TRUE(id.version.starts_with("3.")) << id.version;
  EXPECT_TRUE(id.summary.starts_with("etcd " + id.version + " (cluster version 3.")) << id.summary;
  auto peer = identify("127.0.0.1", m_peer, Protocol::tcp, "etcd", 1000ms);
  EXPECT_EQ(peer.service, "etcd") << peer.summary;
  // Without the hint, the generic order (HTTP GET / first) still ends at etcd? GET / is 404
  // there: it is named a plain HTTP server, which is what that request shows.
  EXPECT_EQ(identify("127.0.0.1", m_client, Protocol::tcp, "", 1000ms).service, "HTTP");
}

TEST_F(Etcd, TlsVersionOverHttps)
{
  make_certificates();
  start("https", {"--cert-file", m_dir + "/server.crt", "--key-file", m_dir + "/server.key"});
  auto id = identify("127.0.0.1", m_client, Protocol::tcp, "etcd", 1000ms);
  EXPECT_EQ(id.service, "etcd");
  EXPECT_TRUE(id.summary.starts_with("etcd 3.")) << id.summary;
  EXPECT_NE(id.summary.find("(TLS, cert CN=pmtest, issuer CN=etcd-ca)"), std::string::npos) << id.summary;
}

TEST_F(Etcd, ClientCertificateAuthLeavesTheCertificate)
{
  make_certificates();
  start("https", {"--cert-file", m_dir + "/server.crt", "--key-file", m_dir + "/server.key", "--client-cert-auth",
                  "--trusted-ca-file", m_dir + "/ca.crt"});
  auto id = identify("127.0.0.1", m_client, Protocol::tcp, "etcd", 1000ms);
  EXPECT_EQ(id.service, "etcd");
  EXPECT_EQ(id.summary, "etcd (TLS, client certificate required, cert CN=pmtest, issuer CN=etcd-ca)");
}

} // namespace
} // namespace portmatrix
