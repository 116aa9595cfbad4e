// The system runner (util/process) and the dry one.
#include "remote/runner.hpp"

namespace portmatrix {

namespace {

class SystemBackground : public Background
{
public:
  SystemBackground(const std::vector<std::string>& argv, const std::string& input) : m_process(argv, input) {}
  bool wait_for(std::string_view text, std::chrono::milliseconds timeout) override
  {
    return m_process.wait_for(text, timeout);
  }
  int finish(std::chrono::milliseconds timeout) override { return m_process.finish(timeout); }
  std::string output() override { return m_process.output(); }

private:
  BackgroundProcess m_process;
};

class SystemRunner : public Runner
{
public:
  ProcessResult run(const std::vector<std::string>& argv, const std::string& input, Streams streams) override
  {
    return run_process(argv, input, streams);
  }
  std::unique_ptr<Background> start(const std::vector<std::string>& argv, const std::string& input) override
  {
    return std::make_unique<SystemBackground>(argv, input);
  }
};

class DryBackground : public Background
{
public:
  explicit DryBackground(std::string output) : m_output(std::move(output)) {}
  bool wait_for(std::string_view, std::chrono::milliseconds) override { return true; }
  int finish(std::chrono::milliseconds) override { return 0; }
  std::string output() override { return m_output; }

private:
  std::string m_output;
};

class DryRunner : public Runner
{
public:
  explicit DryRunner(std::string output) : m_output(std::move(output)) {}
  ProcessResult run(const std::vector<std::string>&, const std::string&, Streams) override { return {0, m_output, {}}; }
  std::unique_ptr<Background> start(const std::vector<std::string>&, const std::string&) override
  {
    return std::make_unique<DryBackground>(m_output);
  }

private:
  std::string m_output;
};

} // namespace

std::unique_ptr<Runner>
make_system_runner()
{
  return std::make_unique<SystemRunner>();
}

std::unique_ptr<Runner>
make_dry_runner(std::string output)
{
  return std::make_unique<DryRunner>(std::move(output));
}

} // namespace portmatrix
